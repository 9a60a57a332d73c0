using System.Runtime.CompilerServices;
using System.Text;

namespace Pargs.Templates;

/// <summary>
/// Walks a parsed template and writes its output, with Python/Jinja semantics for values (<see cref="JinjaValues"/>),
/// the built-in filters, tests and methods, and the bounds of <see cref="JinjaLimits"/>. One interpreter per render.
/// </summary>
sealed class JinjaInterpreter
{
    enum Flow { Normal, Break, Continue }

    StringBuilder output = new();
    int loopIterations;
    int callDepth;

    public string Render(List<JinjaNode> nodes, JinjaScope scope)
    {
        Execute(nodes, scope);
        return output.ToString();
    }

    void Write(string text, int line)
    {
        if (output.Length + text.Length > JinjaLimits.MaxOutputChars)
            throw new JinjaRuntimeException($"the rendered text exceeds {JinjaLimits.MaxOutputChars} characters", line);
        output.Append(text);
    }

    /// <summary>Renders nodes into a string of their own (block set, macro bodies, filter blocks).</summary>
    string Capture(List<JinjaNode> nodes, JinjaScope scope, int line)
    {
        var saved = output;
        output = new StringBuilder();
        try
        {
            var flow = Execute(nodes, scope);
            if (flow != Flow.Normal) throw new JinjaRuntimeException("break/continue outside a loop", line);
            return output.ToString();
        }
        finally { output = saved; }
    }

    public string RenderMacroBody(JinjaMacro macro, List<JinjaNode> body, JinjaScope scope, int line)
    {
        if (++callDepth > JinjaLimits.MaxCallDepth)
            throw new JinjaRuntimeException($"macro calls nest deeper than {JinjaLimits.MaxCallDepth} (macro '{macro.Name}')", line);
        try { return Capture(body, scope, line); }
        finally { callDepth--; }
    }

    public void CountIterations(long count, int line)
    {
        loopIterations += (int)Math.Min(count, int.MaxValue - loopIterations);
        if (loopIterations > JinjaLimits.MaxLoopIterations)
            throw new JinjaRuntimeException($"the template runs more than {JinjaLimits.MaxLoopIterations} loop iterations", line);
    }

    // ---------------- statements ----------------

    Flow Execute(List<JinjaNode> nodes, JinjaScope scope)
    {
        foreach (var node in nodes)
        {
            var flow = Execute(node, scope);
            if (flow != Flow.Normal) return flow;
        }
        return Flow.Normal;
    }

    Flow Execute(JinjaNode node, JinjaScope scope)
    {
        RuntimeHelpers.EnsureSufficientExecutionStack();
        switch (node)
        {
            case TextNode text:
                Write(text.Text, text.Line);
                return Flow.Normal;
            case OutputNode print:
                Write(JinjaValues.ToText(Evaluate(print.Value, scope)), print.Line);
                return Flow.Normal;
            case IfNode conditional:
                return Execute(JinjaValues.IsTrue(Evaluate(conditional.Condition, scope)) ? conditional.Body : conditional.Else, scope);
            case ForNode loop:
                ExecuteFor(loop, scope);
                return Flow.Normal;
            case SetNode set:
                ExecuteSet(set, scope);
                return Flow.Normal;
            case BlockSetNode blockSet:
            {
                object? value = Capture(blockSet.Body, scope, blockSet.Line);
                foreach (var filter in blockSet.Filters) value = ApplyFilter(filter, value, scope);
                scope.Set(blockSet.Target, value);
                return Flow.Normal;
            }
            case MacroNode macro:
                scope.Set(macro.Name, new JinjaMacro(macro.Name, macro.Parameters, macro.Body, scope));
                return Flow.Normal;
            case CallBlockNode callBlock:
            {
                var caller = new JinjaMacro("caller", callBlock.CallerParameters, callBlock.Body, scope);
                var call = callBlock.Call;
                var callee = Evaluate(call.Callee, scope);
                var arguments = EvaluateArguments(call.Positional, call.Named, scope, call.Line);
                arguments.Named.Add(new("caller", caller));
                Write(JinjaValues.ToText(Invoke(callee, arguments, call.Line)), callBlock.Line);
                return Flow.Normal;
            }
            case FilterBlockNode filterBlock:
            {
                object? value = Capture(filterBlock.Body, scope, filterBlock.Line);
                foreach (var filter in filterBlock.Filters) value = ApplyFilter(filter, value, scope);
                Write(JinjaValues.ToText(value), filterBlock.Line);
                return Flow.Normal;
            }
            case BreakNode: return Flow.Break;
            case ContinueNode: return Flow.Continue;
            case DoNode doNode:
                Evaluate(doNode.Value, scope);
                return Flow.Normal;
            default:
                throw new JinjaRuntimeException($"cannot execute {node.GetType().Name}", node.Line);
        }
    }

    void ExecuteFor(ForNode loop, JinjaScope scope)
    {
        var items = JinjaValues.Iterate(Evaluate(loop.Iterable, scope), loop.Line);
        if (loop.Filter != null)
        {
            var kept = new List<object?>();
            foreach (var item in items)
            {
                var probe = new JinjaScope(scope);
                BindTargets(loop.Targets, item, probe, loop.Line);
                if (JinjaValues.IsTrue(Evaluate(loop.Filter, probe))) kept.Add(item);
            }
            items = kept;
        }
        if (items.Count == 0)
        {
            Execute(loop.Empty, scope);
            return;
        }
        var loopInfo = new JinjaLoop(items);
        for (int i = 0; i < items.Count; i++)
        {
            CountIterations(1, loop.Line);
            var iteration = new JinjaScope(scope);
            loopInfo.Index0 = i;
            iteration.Set("loop", loopInfo);
            BindTargets(loop.Targets, items[i], iteration, loop.Line);
            if (Execute(loop.Body, iteration) == Flow.Break) break;
        }
    }

    static void BindTargets(List<string> targets, object? value, JinjaScope scope, int line)
    {
        if (targets.Count == 1)
        {
            scope.Set(targets[0], value);
            return;
        }
        var items = value is List<object?> list ? list : JinjaValues.Iterate(value, line);
        if (items.Count != targets.Count)
            throw new JinjaRuntimeException($"cannot unpack {items.Count} value(s) into {targets.Count} names ({string.Join(", ", targets)})", line);
        for (int i = 0; i < targets.Count; i++) scope.Set(targets[i], items[i]);
    }

    void ExecuteSet(SetNode set, JinjaScope scope)
    {
        var value = Evaluate(set.Value, scope);
        if (set.Attribute != null)
        {
            if (!scope.TryLookup(set.Targets[0], out var target) || target is not JinjaNamespace ns)
                throw new JinjaRuntimeException($"cannot assign attribute '{set.Attribute}' on '{set.Targets[0]}': only a namespace() takes attributes", set.Line);
            ns.Attributes[set.Attribute] = value;
            return;
        }
        BindTargets(set.Targets, value, scope, set.Line);
    }

    // ---------------- expressions ----------------

    public object? Evaluate(JinjaExpr expression, JinjaScope scope)
    {
        // A long operator chain (1+1+…) nests as deep as it is long: stop with an error, not a stack overflow.
        RuntimeHelpers.EnsureSufficientExecutionStack();
        switch (expression)
        {
            case LiteralExpr literal: return literal.Value;
            case NameExpr name:
                return scope.TryLookup(name.Name, out var value) ? value : new JinjaUndefined($"'{name.Name}'");
            case ListExpr list:
            {
                var items = list.Items.Select(i => Evaluate(i, scope));
                return list.IsTuple ? new JinjaTuple(items) : items.ToList();
            }
            case DictExpr dict:
            {
                var result = new Dictionary<string, object?>(StringComparer.Ordinal);
                foreach (var (keyExpr, valueExpr) in dict.Items)
                {
                    var key = JinjaDictKeys.KeyFor(result, Evaluate(keyExpr, scope), keyExpr.Line);
                    result[key] = Evaluate(valueExpr, scope);
                }
                return result;
            }
            case AttributeExpr attribute:
                return JinjaValues.GetAttribute(Evaluate(attribute.Target, scope), attribute.Name, attribute.Line);
            case IndexExpr index:
                return JinjaValues.GetItem(Evaluate(index.Target, scope), Evaluate(index.Index, scope), index.Line);
            case SliceExpr slice:
                return JinjaValues.Slice(Evaluate(slice.Target, scope),
                    slice.Start is null ? null : Evaluate(slice.Start, scope),
                    slice.Stop is null ? null : Evaluate(slice.Stop, scope),
                    slice.Step is null ? null : Evaluate(slice.Step, scope), slice.Line);
            case CallExpr call:
            {
                var callee = Evaluate(call.Callee, scope);
                return Invoke(callee, EvaluateArguments(call.Positional, call.Named, scope, call.Line), call.Line);
            }
            case FilterExpr filter:
                return ApplyFilter(filter.Filter, Evaluate(filter.Value, scope), scope);
            case TestExpr test:
            {
                var subject = Evaluate(test.Value, scope);
                var arguments = test.Arguments.Select(a => Evaluate(a, scope)).ToList();
                return JinjaTestFunctions.Run(test.Test, subject, arguments, test.Line) != test.Negated;
            }
            case UnaryExpr unary:
            {
                var operand = Evaluate(unary.Operand, scope);
                return unary.Operator switch
                {
                    "not" => !JinjaValues.IsTrue(operand),
                    "-" => operand switch
                    {
                        long l => l == long.MinValue ? throw new JinjaRuntimeException("integer overflow in unary -", unary.Line) : (object)(-l),
                        double d => -d,
                        bool b => b ? -1L : 0L,
                        JinjaUndefined u => throw u.Error(unary.Line),
                        _ => throw new JinjaRuntimeException($"bad operand type for unary -: '{JinjaValues.TypeName(operand)}'", unary.Line),
                    },
                    _ => JinjaValues.IsNumber(operand) ? operand
                        : throw new JinjaRuntimeException($"bad operand type for unary +: '{JinjaValues.TypeName(operand)}'", unary.Line),
                };
            }
            case BinaryExpr binary:
            {
                var left = Evaluate(binary.Left, scope);
                var right = Evaluate(binary.Right, scope);
                if (binary.Operator == "~")
                {
                    var text = JinjaValues.ToText(left) + JinjaValues.ToText(right);
                    if (text.Length > JinjaLimits.MaxOutputChars) throw new JinjaRuntimeException("a string grows beyond the output limit", binary.Line);
                    return text;
                }
                var result = JinjaValues.Arithmetic(binary.Operator, left, right, binary.Line);
                if (result is string s && s.Length > JinjaLimits.MaxOutputChars) throw new JinjaRuntimeException("a string grows beyond the output limit", binary.Line);
                return result;
            }
            case LogicalExpr logical:
            {
                var left = Evaluate(logical.Left, scope);
                bool leftTrue = JinjaValues.IsTrue(left);
                if (logical.IsAnd ? !leftTrue : leftTrue) return left;
                return Evaluate(logical.Right, scope);
            }
            case CompareExpr compare:
            {
                var left = Evaluate(compare.First, scope);
                foreach (var (op, operandExpr) in compare.Rest)
                {
                    var right = Evaluate(operandExpr, scope);
                    bool holds = op switch
                    {
                        "==" => JinjaValues.Equals(left, right),
                        "!=" => !JinjaValues.Equals(left, right),
                        "in" => JinjaValues.Contains(right, left, compare.Line),
                        "not in" => !JinjaValues.Contains(right, left, compare.Line),
                        "<" => JinjaValues.Compare(left, right, op, compare.Line) < 0,
                        ">" => JinjaValues.Compare(left, right, op, compare.Line) > 0,
                        "<=" => JinjaValues.Compare(left, right, op, compare.Line) <= 0,
                        _ => JinjaValues.Compare(left, right, op, compare.Line) >= 0,
                    };
                    if (!holds) return false;
                    left = right;
                }
                return true;
            }
            case ConditionalExpr conditional:
                if (JinjaValues.IsTrue(Evaluate(conditional.Condition, scope))) return Evaluate(conditional.Then, scope);
                return conditional.Else is null ? new JinjaUndefined("the else branch of an inline if") : Evaluate(conditional.Else, scope);
            default:
                throw new JinjaRuntimeException($"cannot evaluate {expression.GetType().Name}", expression.Line);
        }
    }

    JinjaArguments EvaluateArguments(List<JinjaExpr> positional, List<(string Name, JinjaExpr Value)> named, JinjaScope scope, int line) =>
        new(positional.Select(p => Evaluate(p, scope)).ToList(),
            named.Select(n => new KeyValuePair<string, object?>(n.Name, Evaluate(n.Value, scope))).ToList(), line);

    object? Invoke(object? callee, JinjaArguments arguments, int line) => callee switch
    {
        IJinjaCallable callable => callable.Call(this, arguments),
        JinjaUndefined undefined => throw undefined.Error(line),
        _ => throw new JinjaRuntimeException($"'{JinjaValues.TypeName(callee)}' object is not callable", line),
    };

    object? ApplyFilter(FilterCall filter, object? value, JinjaScope scope) =>
        JinjaFilters.Apply(this, filter.Name, value, EvaluateArguments(filter.Positional, filter.Named, scope, filter.Line));
}
