using System.Globalization;

namespace Pargs.Templates;

/// <summary>
/// Recursive-descent parser from tokens to <see cref="JinjaNode"/>s, with Jinja's grammar and operator
/// precedence (loosest first): <c>x if c else y</c>, <c>or</c>, <c>and</c>, <c>not</c>, comparisons and
/// <c>in</c>, <c>+ -</c>, <c>~</c>, <c>* / // %</c>, <c>**</c>, unary <c>- +</c>, then postfix <c>.a [i] (args)</c>
/// with filters <c>| f</c> and tests <c>is t</c> binding tightest. Nesting depth is bounded (untrusted text).
/// </summary>
sealed class JinjaParser
{
    public const int MaxNesting = 200;

    readonly List<JinjaToken> tokens;
    readonly string source;
    int index;
    int depth;

    JinjaParser(List<JinjaToken> tokens, string source)
    {
        this.tokens = tokens;
        this.source = source;
    }

    public static List<JinjaNode> Parse(string text, string source)
    {
        var parser = new JinjaParser(JinjaLexer.Tokenize(text, source), source);
        var body = parser.ParseBody([], out _);
        return body;
    }

    JinjaToken Current => tokens[index];
    JinjaToken Peek(int ahead = 1) => tokens[Math.Min(index + ahead, tokens.Count - 1)];
    JinjaToken Next() => tokens[index++ < tokens.Count - 1 ? index - 1 : tokens.Count - 1];

    PargsException Error(string message, int? line = null) => JinjaErrors.At(source, line ?? Current.Line, message);

    JinjaToken Expect(JinjaTokenKind kind, string? value = null)
    {
        var token = Current;
        if (token.Kind != kind || (value != null && token.Value != value))
            throw Error($"expected {(value != null ? $"'{value}'" : kind.ToString())}, found {token}");
        index++;
        return token;
    }

    string ExpectName() => Expect(JinjaTokenKind.Name).Value;

    bool SkipOperator(string op)
    {
        if (!Current.IsOperator(op)) return false;
        index++;
        return true;
    }

    bool SkipName(string name)
    {
        if (!Current.IsName(name)) return false;
        index++;
        return true;
    }

    void Enter()
    {
        System.Runtime.CompilerServices.RuntimeHelpers.EnsureSufficientExecutionStack();
        if (++depth > MaxNesting) throw Error($"the template nests deeper than {MaxNesting} levels");
    }

    // ---------------- statements ----------------

    /// <summary>Parses nodes until a statement whose name is in <paramref name="endTags"/>; leaves the cursor after that name.</summary>
    List<JinjaNode> ParseBody(HashSet<string> endTags, out string endTag)
    {
        Enter();
        var body = new List<JinjaNode>();
        while (true)
        {
            var token = Current;
            switch (token.Kind)
            {
                case JinjaTokenKind.End:
                    if (endTags.Count > 0) throw Error($"the template ends inside a block: expected {{% {string.Join(" or ", endTags)} %}}");
                    endTag = "";
                    depth--;
                    return body;
                case JinjaTokenKind.Text:
                    body.Add(new TextNode(token.Value, token.Line));
                    index++;
                    break;
                case JinjaTokenKind.OpenExpression:
                    index++;
                    body.Add(new OutputNode(ParseTuple(), token.Line));
                    Expect(JinjaTokenKind.CloseExpression);
                    break;
                case JinjaTokenKind.OpenStatement:
                    index++;
                    var name = Current;
                    if (name.Kind != JinjaTokenKind.Name) throw Error($"expected a statement name after '{{%', found {name}");
                    if (endTags.Contains(name.Value))
                    {
                        index++;
                        endTag = name.Value;
                        depth--;
                        return body;
                    }
                    body.Add(ParseStatement());
                    break;
                default:
                    throw Error($"unexpected {token}");
            }
        }
    }

    JinjaNode ParseStatement()
    {
        var name = Next();
        int line = name.Line;
        switch (name.Value)
        {
            case "if": return ParseIf(line);
            case "for": return ParseFor(line);
            case "set": return ParseSet(line);
            case "macro": return ParseMacro(line);
            case "call": return ParseCallBlock(line);
            case "filter":
            {
                var filters = ParseFilterChain(requireFirst: true);
                Expect(JinjaTokenKind.CloseStatement);
                var body = ParseBody(["endfilter"], out _);
                Expect(JinjaTokenKind.CloseStatement);
                return new FilterBlockNode(filters, body, line);
            }
            case "break":
                Expect(JinjaTokenKind.CloseStatement);
                return new BreakNode(line);
            case "continue":
                Expect(JinjaTokenKind.CloseStatement);
                return new ContinueNode(line);
            case "do":
            {
                var value = ParseTuple();
                Expect(JinjaTokenKind.CloseStatement);
                return new DoNode(value, line);
            }
            case "generation":
            {
                // transformers' {% generation %} marks assistant text for a training mask; it renders its body as is.
                Expect(JinjaTokenKind.CloseStatement);
                var body = ParseBody(["endgeneration"], out _);
                Expect(JinjaTokenKind.CloseStatement);
                return new IfNode(new LiteralExpr(true, line), body, [], line);
            }
            default:
                throw Error($"unknown or unsupported statement '{{% {name.Value} %}}'", line);
        }
    }

    JinjaNode ParseIf(int line)
    {
        var condition = ParseExpression();
        Expect(JinjaTokenKind.CloseStatement);
        var body = ParseBody(["elif", "else", "endif"], out var end);
        List<JinjaNode> elseBody = [];
        if (end == "elif")
        {
            elseBody = [ParseIf(Current.Line)];
            return new IfNode(condition, body, elseBody, line);
        }
        if (end == "else")
        {
            Expect(JinjaTokenKind.CloseStatement);
            elseBody = ParseBody(["endif"], out _);
        }
        Expect(JinjaTokenKind.CloseStatement);
        return new IfNode(condition, body, elseBody, line);
    }

    JinjaNode ParseFor(int line)
    {
        var targets = ParseAssignTargets();
        Expect(JinjaTokenKind.Name, "in");
        var iterable = ParseTuple(withCondition: false);
        JinjaExpr? filter = null;
        if (SkipName("if")) filter = ParseExpression();
        if (Current.IsName("recursive")) throw Error("recursive for loops are not supported");
        Expect(JinjaTokenKind.CloseStatement);
        var body = ParseBody(["else", "endfor"], out var end);
        List<JinjaNode> empty = [];
        if (end == "else")
        {
            Expect(JinjaTokenKind.CloseStatement);
            empty = ParseBody(["endfor"], out _);
        }
        Expect(JinjaTokenKind.CloseStatement);
        return new ForNode(targets, iterable, filter, body, empty, line);
    }

    List<string> ParseAssignTargets()
    {
        bool parenthesised = SkipOperator("(");
        var names = new List<string> { ExpectName() };
        while (SkipOperator(",")) names.Add(ExpectName());
        if (parenthesised) Expect(JinjaTokenKind.Operator, ")");
        return names;
    }

    JinjaNode ParseSet(int line)
    {
        var first = ExpectName();
        if (SkipOperator("."))
        {
            var attribute = ExpectName();
            Expect(JinjaTokenKind.Operator, "=");
            var value = ParseTuple();
            Expect(JinjaTokenKind.CloseStatement);
            return new SetNode([first], attribute, value, line);
        }
        var targets = new List<string> { first };
        while (SkipOperator(",")) targets.Add(ExpectName());
        if (SkipOperator("="))
        {
            var value = ParseTuple();
            Expect(JinjaTokenKind.CloseStatement);
            return new SetNode(targets, null, value, line);
        }
        if (targets.Count > 1) throw Error("a block set assigns one name");
        var filters = ParseFilterChain(requireFirst: false);
        Expect(JinjaTokenKind.CloseStatement);
        var body = ParseBody(["endset"], out _);
        Expect(JinjaTokenKind.CloseStatement);
        return new BlockSetNode(first, filters, body, line);
    }

    List<MacroParameter> ParseParameters()
    {
        var parameters = new List<MacroParameter>();
        Expect(JinjaTokenKind.Operator, "(");
        while (!SkipOperator(")"))
        {
            if (parameters.Count > 0) Expect(JinjaTokenKind.Operator, ",");
            if (SkipOperator(")")) break;
            var name = ExpectName();
            JinjaExpr? defaultValue = SkipOperator("=") ? ParseExpression() : null;
            parameters.Add(new MacroParameter(name, defaultValue));
        }
        return parameters;
    }

    JinjaNode ParseMacro(int line)
    {
        var name = ExpectName();
        var parameters = ParseParameters();
        Expect(JinjaTokenKind.CloseStatement);
        var body = ParseBody(["endmacro"], out _);
        if (Current.Kind == JinjaTokenKind.Name) index++; // {% endmacro name %}
        Expect(JinjaTokenKind.CloseStatement);
        return new MacroNode(name, parameters, body, line);
    }

    JinjaNode ParseCallBlock(int line)
    {
        List<MacroParameter> callerParameters = Current.IsOperator("(") ? ParseParameters() : [];
        var call = ParseExpression() as CallExpr ?? throw Error("{% call %} expects a macro call", line);
        Expect(JinjaTokenKind.CloseStatement);
        var body = ParseBody(["endcall"], out _);
        Expect(JinjaTokenKind.CloseStatement);
        return new CallBlockNode(call, callerParameters, body, line);
    }

    List<FilterCall> ParseFilterChain(bool requireFirst)
    {
        var filters = new List<FilterCall>();
        if (requireFirst) filters.Add(ParseFilterCall());
        while (SkipOperator("|")) filters.Add(ParseFilterCall());
        return filters;
    }

    // ---------------- expressions ----------------

    JinjaExpr ParseTuple(bool withCondition = true)
    {
        int line = Current.Line;
        var first = withCondition ? ParseExpression() : ParseOr();
        if (!Current.IsOperator(",")) return first;
        var items = new List<JinjaExpr> { first };
        while (SkipOperator(","))
        {
            if (Current.Kind is JinjaTokenKind.CloseStatement or JinjaTokenKind.CloseExpression) break;
            items.Add(withCondition ? ParseExpression() : ParseOr());
        }
        return new ListExpr(items, line, IsTuple: true);
    }

    JinjaExpr ParseExpression()
    {
        Enter();
        var value = ParseOr();
        while (Current.IsName("if"))
        {
            int line = Next().Line;
            var condition = ParseOr();
            JinjaExpr? otherwise = SkipName("else") ? ParseExpression() : null;
            value = new ConditionalExpr(condition, value, otherwise, line);
        }
        depth--;
        return value;
    }

    JinjaExpr ParseOr()
    {
        var left = ParseAnd();
        while (Current.IsName("or"))
        {
            int line = Next().Line;
            left = new LogicalExpr(false, left, ParseAnd(), line);
        }
        return left;
    }

    JinjaExpr ParseAnd()
    {
        var left = ParseNot();
        while (Current.IsName("and"))
        {
            int line = Next().Line;
            left = new LogicalExpr(true, left, ParseNot(), line);
        }
        return left;
    }

    JinjaExpr ParseNot()
    {
        if (Current.IsName("not"))
        {
            int line = Next().Line;
            Enter();
            var operand = ParseNot();
            depth--;
            return new UnaryExpr("not", operand, line);
        }
        return ParseCompare();
    }

    static readonly HashSet<string> ComparisonOperators = ["==", "!=", "<", ">", "<=", ">="];

    JinjaExpr ParseCompare()
    {
        int line = Current.Line;
        var first = ParseAdditive();
        var rest = new List<(string, JinjaExpr)>();
        while (true)
        {
            if (Current.Kind == JinjaTokenKind.Operator && ComparisonOperators.Contains(Current.Value))
            {
                var op = Next().Value;
                rest.Add((op, ParseAdditive()));
            }
            else if (SkipName("in")) rest.Add(("in", ParseAdditive()));
            else if (Current.IsName("not") && Peek().IsName("in"))
            {
                index += 2;
                rest.Add(("not in", ParseAdditive()));
            }
            else break;
        }
        return rest.Count == 0 ? first : new CompareExpr(first, rest, line);
    }

    JinjaExpr ParseAdditive()
    {
        var left = ParseConcat();
        while (Current.IsOperator("+") || Current.IsOperator("-"))
        {
            var op = Next();
            left = new BinaryExpr(op.Value, left, ParseConcat(), op.Line);
        }
        return left;
    }

    JinjaExpr ParseConcat()
    {
        var left = ParseMultiplicative();
        while (Current.IsOperator("~"))
        {
            var op = Next();
            left = new BinaryExpr("~", left, ParseMultiplicative(), op.Line);
        }
        return left;
    }

    JinjaExpr ParseMultiplicative()
    {
        var left = ParsePower();
        while (Current.Kind == JinjaTokenKind.Operator && Current.Value is "*" or "/" or "//" or "%")
        {
            var op = Next();
            left = new BinaryExpr(op.Value, left, ParsePower(), op.Line);
        }
        return left;
    }

    JinjaExpr ParsePower()
    {
        var left = ParseUnary(withFilters: true);
        while (Current.IsOperator("**"))
        {
            var op = Next();
            left = new BinaryExpr("**", left, ParseUnary(withFilters: true), op.Line);
        }
        return left;
    }

    JinjaExpr ParseUnary(bool withFilters)
    {
        Enter();
        JinjaExpr value;
        if (Current.IsOperator("-") || Current.IsOperator("+"))
        {
            var op = Next();
            value = new UnaryExpr(op.Value, ParseUnary(withFilters: false), op.Line);
        }
        else value = ParsePostfix(ParsePrimary());
        if (withFilters) value = ParseFiltersAndTests(value);
        depth--;
        return value;
    }

    JinjaExpr ParsePrimary()
    {
        var token = Current;
        switch (token.Kind)
        {
            case JinjaTokenKind.Name:
                index++;
                return token.Value switch
                {
                    "true" or "True" => new LiteralExpr(true, token.Line),
                    "false" or "False" => new LiteralExpr(false, token.Line),
                    "none" or "None" => new LiteralExpr(null, token.Line),
                    _ => new NameExpr(token.Value, token.Line),
                };
            case JinjaTokenKind.String:
            {
                index++;
                var text = token.Value;
                while (Current.Kind == JinjaTokenKind.String) text += Next().Value; // adjacent literals concatenate
                return new LiteralExpr(text, token.Line);
            }
            case JinjaTokenKind.Integer:
                index++;
                return new LiteralExpr(long.Parse(token.Value, CultureInfo.InvariantCulture), token.Line);
            case JinjaTokenKind.Float:
                index++;
                return new LiteralExpr(double.Parse(token.Value, CultureInfo.InvariantCulture), token.Line);
            case JinjaTokenKind.Operator when token.Value == "(":
            {
                index++;
                if (SkipOperator(")")) return new ListExpr([], token.Line, IsTuple: true);
                var inner = ParseTuple();
                Expect(JinjaTokenKind.Operator, ")");
                return inner;
            }
            case JinjaTokenKind.Operator when token.Value == "[":
            {
                index++;
                var items = new List<JinjaExpr>();
                while (!SkipOperator("]"))
                {
                    if (items.Count > 0)
                    {
                        Expect(JinjaTokenKind.Operator, ",");
                        if (SkipOperator("]")) break;
                    }
                    items.Add(ParseExpression());
                }
                return new ListExpr(items, token.Line);
            }
            case JinjaTokenKind.Operator when token.Value == "{":
            {
                index++;
                var items = new List<(JinjaExpr, JinjaExpr)>();
                while (!SkipOperator("}"))
                {
                    if (items.Count > 0)
                    {
                        Expect(JinjaTokenKind.Operator, ",");
                        if (SkipOperator("}")) break;
                    }
                    var key = ParseExpression();
                    Expect(JinjaTokenKind.Operator, ":");
                    items.Add((key, ParseExpression()));
                }
                return new DictExpr(items, token.Line);
            }
            default:
                throw Error($"unexpected {token} in an expression");
        }
    }

    JinjaExpr ParsePostfix(JinjaExpr value)
    {
        while (true)
        {
            var token = Current;
            if (token.IsOperator("."))
            {
                index++;
                var name = Current;
                if (name.Kind == JinjaTokenKind.Name) { index++; value = new AttributeExpr(value, name.Value, token.Line); }
                else if (name.Kind == JinjaTokenKind.Integer) { index++; value = new IndexExpr(value, new LiteralExpr(long.Parse(name.Value, CultureInfo.InvariantCulture), name.Line), token.Line); }
                else throw Error($"expected an attribute name after '.', found {name}");
            }
            else if (token.IsOperator("[")) { index++; value = ParseSubscript(value, token.Line); }
            else if (token.IsOperator("(")) value = ParseCall(value);
            else return value;
        }
    }

    JinjaExpr ParseSubscript(JinjaExpr target, int line)
    {
        JinjaExpr? start = null, stop = null, step = null;
        if (!Current.IsOperator(":")) start = ParseExpression();
        if (!SkipOperator(":"))
        {
            Expect(JinjaTokenKind.Operator, "]");
            return new IndexExpr(target, start!, line);
        }
        if (!Current.IsOperator(":") && !Current.IsOperator("]")) stop = ParseExpression();
        if (SkipOperator(":") && !Current.IsOperator("]")) step = ParseExpression();
        Expect(JinjaTokenKind.Operator, "]");
        return new SliceExpr(target, start, stop, step, line);
    }

    (List<JinjaExpr>, List<(string, JinjaExpr)>) ParseArguments()
    {
        Expect(JinjaTokenKind.Operator, "(");
        var positional = new List<JinjaExpr>();
        var named = new List<(string, JinjaExpr)>();
        bool first = true;
        while (!SkipOperator(")"))
        {
            if (!first)
            {
                Expect(JinjaTokenKind.Operator, ",");
                if (SkipOperator(")")) break;
            }
            first = false;
            if (Current.IsOperator("*") || Current.IsOperator("**")) throw Error("*args and **kwargs in calls are not supported");
            if (Current.Kind == JinjaTokenKind.Name && Peek().IsOperator("="))
            {
                var name = Next().Value;
                index++;
                named.Add((name, ParseExpression()));
            }
            else
            {
                if (named.Count > 0) throw Error("a positional argument follows a keyword argument");
                positional.Add(ParseExpression());
            }
        }
        return (positional, named);
    }

    CallExpr ParseCall(JinjaExpr callee)
    {
        int line = Current.Line;
        var (positional, named) = ParseArguments();
        return new CallExpr(callee, positional, named, line);
    }

    FilterCall ParseFilterCall()
    {
        var token = Expect(JinjaTokenKind.Name);
        var name = token.Value;
        while (Current.IsOperator(".") && Peek().Kind == JinjaTokenKind.Name) { index++; name += "." + Next().Value; }
        if (!Current.IsOperator("(")) return new FilterCall(name, [], [], token.Line);
        var (positional, named) = ParseArguments();
        return new FilterCall(name, positional, named, token.Line);
    }

    static readonly HashSet<string> NotTestArguments = ["else", "or", "and", "if", "in", "not", "is"];

    JinjaExpr ParseFiltersAndTests(JinjaExpr value)
    {
        while (true)
        {
            if (SkipOperator("|"))
            {
                var filter = ParseFilterCall();
                value = new FilterExpr(value, filter, filter.Line);
            }
            else if (Current.IsName("is"))
            {
                int line = Next().Line;
                bool negated = SkipName("not");
                var name = ExpectName();
                while (Current.IsOperator(".") && Peek().Kind == JinjaTokenKind.Name) { index++; name += "." + Next().Value; }
                var arguments = new List<JinjaExpr>();
                if (Current.IsOperator("("))
                {
                    var (positional, named) = ParseArguments();
                    if (named.Count > 0) throw Error($"test '{name}' takes no keyword arguments", line);
                    arguments = positional;
                }
                else if (Current.Kind is JinjaTokenKind.String or JinjaTokenKind.Integer or JinjaTokenKind.Float
                         || (Current.Kind == JinjaTokenKind.Name && !NotTestArguments.Contains(Current.Value))
                         || Current.IsOperator("[") || Current.IsOperator("{"))
                {
                    arguments.Add(ParsePostfix(ParsePrimary()));
                }
                value = new TestExpr(value, name, arguments, negated, line);
            }
            else if (Current.IsOperator("(")) value = ParseCall(value);
            else return value;
        }
    }
}
