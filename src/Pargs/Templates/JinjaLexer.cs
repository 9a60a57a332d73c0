using System.Globalization;
using System.Text;

namespace Pargs.Templates;

/// <summary>
/// Splits template text into text runs and tag tokens, applying the whitespace rules transformers renders chat
/// templates with: <c>trim_blocks</c> (the newline right after a block or comment tag is dropped),
/// <c>lstrip_blocks</c> (spaces and tabs between a line start and a block or comment tag are dropped), the
/// <c>-</c> markers (<c>{%-</c> strips all whitespace before the tag, <c>-%}</c> all whitespace after), and
/// Jinja's default of dropping one trailing newline of the template.
/// </summary>
sealed class JinjaLexer
{
    readonly string text;
    readonly int length;
    readonly string source;
    readonly List<JinjaToken> tokens = [];
    int position;
    int line = 1;

    JinjaLexer(string text, string source)
    {
        this.text = text;
        this.source = source;
        length = text.EndsWith('\n') ? text.Length - 1 : text.Length;
    }

    public static List<JinjaToken> Tokenize(string text, string source)
    {
        var lexer = new JinjaLexer(text, source);
        lexer.Run();
        return lexer.tokens;
    }

    PargsException Error(string message) => JinjaErrors.At(source, line, message);

    void Run()
    {
        bool stripNextText = false;
        while (position < length)
        {
            int tagStart = FindTagStart(position);
            int textEnd = tagStart < 0 ? length : tagStart;
            bool stripBefore = tagStart >= 0 && tagStart + 2 < length && text[tagStart + 2] == '-';
            // {%+ keeps the indentation lstrip_blocks would remove
            bool keepBefore = tagStart >= 0 && tagStart + 2 < length && text[tagStart + 2] == '+' && text[tagStart + 1] == '%';
            bool isBlockOrComment = tagStart >= 0 && text[tagStart + 1] != '{' && !keepBefore;
            int textStart = position;
            if (stripNextText)
                while (textStart < textEnd && char.IsWhiteSpace(text[textStart])) textStart++;
            int keptEnd = textEnd;
            if (stripBefore)
                while (keptEnd > textStart && char.IsWhiteSpace(text[keptEnd - 1])) keptEnd--;
            else if (isBlockOrComment)
                keptEnd = LstripBlockStart(textStart, textEnd);
            if (keptEnd > textStart) tokens.Add(new(JinjaTokenKind.Text, text[textStart..keptEnd], line));
            CountLines(position, textEnd);
            position = textEnd;
            if (tagStart < 0) break;

            char kind = text[tagStart + 1];
            position = tagStart + 2 + (stripBefore || keepBefore ? 1 : 0);
            if (kind == '#') stripNextText = SkipComment();
            else if (kind == '%' && RawBlockStart.Match(text, position) is { Success: true } raw && raw.Index == position) stripNextText = LexRaw(raw);
            else stripNextText = LexTag(kind == '%');
        }
        tokens.Add(new(JinjaTokenKind.End, "", line));
    }

    static readonly System.Text.RegularExpressions.Regex RawBlockStart = new(@"\G\s*raw\s*([-+]?)%\}");
    static readonly System.Text.RegularExpressions.Regex RawBlockEnd = new(@"\{%([-+]?)\s*endraw\s*([-+]?)%\}");

    /// <summary>
    /// <c>{% raw %}…{% endraw %}</c>: the text between is output as is; whitespace control as Jinja2 applies it.
    /// Returns whether the endraw tag ended with <c>-%}</c>.
    /// </summary>
    bool LexRaw(System.Text.RegularExpressions.Match start)
    {
        int startLine = line;
        position = start.Index + start.Length;
        // Jinja2 applies no trim_blocks after {% raw %}: the raw text starts right after the tag.
        if (start.Groups[1].Value == "-") while (position < length && char.IsWhiteSpace(text[position])) position++;
        var end = RawBlockEnd.Match(text, position);
        if (!end.Success || end.Index + end.Length > length) throw JinjaErrors.At(source, startLine, "{% raw %} is never closed with {% endraw %}");
        int contentEnd = end.Index;
        if (end.Groups[1].Value == "-") while (contentEnd > position && char.IsWhiteSpace(text[contentEnd - 1])) contentEnd--;
        else if (end.Groups[1].Value != "+") contentEnd = LstripBlockStart(position, end.Index);
        if (contentEnd > position) tokens.Add(new(JinjaTokenKind.Text, text[position..contentEnd], line));
        CountLines(position, end.Index + end.Length);
        position = end.Index + end.Length;
        if (end.Groups[2].Value == "-") return true;
        if (end.Groups[2].Value != "+") TrimBlockNewline();
        return false;
    }

    int FindTagStart(int from)
    {
        for (int i = from; i + 1 < length; i++)
            if (text[i] == '{' && (text[i + 1] == '{' || text[i + 1] == '%' || text[i + 1] == '#')) return i;
        return -1;
    }

    /// <summary>lstrip_blocks: the end of the kept text when only spaces/tabs separate a line start from the tag.</summary>
    int LstripBlockStart(int textStart, int tagStart)
    {
        int i = tagStart;
        while (i > 0 && (text[i - 1] == ' ' || text[i - 1] == '\t')) i--;
        bool atLineStart = i == 0 || text[i - 1] == '\n';
        return atLineStart ? Math.Max(i, textStart) : tagStart;
    }

    void CountLines(int from, int to)
    {
        for (int i = from; i < to; i++) if (text[i] == '\n') line++;
    }

    /// <summary>Skips a comment; returns whether it ended with <c>-#}</c>.</summary>
    bool SkipComment()
    {
        int end = text.IndexOf("#}", position, StringComparison.Ordinal);
        if (end < 0 || end + 2 > length) throw Error("a comment '{#' is never closed with '#}'");
        bool stripAfter = end > position && text[end - 1] == '-';
        CountLines(position, end + 2);
        position = end + 2;
        TrimBlockNewline();
        return stripAfter;
    }

    void TrimBlockNewline()
    {
        if (position < length && text[position] == '\n') { position++; line++; }
    }

    /// <summary>Lexes the inside of <c>{% %}</c> or <c>{{ }}</c>; returns whether it closed with a <c>-</c>.</summary>
    bool LexTag(bool statement)
    {
        int openLine = line;
        tokens.Add(new(statement ? JinjaTokenKind.OpenStatement : JinjaTokenKind.OpenExpression, statement ? "{%" : "{{", line));
        string close = statement ? "%}" : "}}";
        int braceDepth = 0;
        while (true)
        {
            while (position < length && char.IsWhiteSpace(text[position]))
            {
                if (text[position] == '\n') line++;
                position++;
            }
            if (position >= length) throw JinjaErrors.At(source, openLine, $"a tag opened here is never closed with '{close}'");
            char c = text[position];
            if (braceDepth == 0)
            {
                if (c == '-' && string.CompareOrdinal(text, position + 1, close, 0, 2) == 0 && position + 3 <= length)
                {
                    position += 3;
                    tokens.Add(new(statement ? JinjaTokenKind.CloseStatement : JinjaTokenKind.CloseExpression, close, line));
                    return true;
                }
                if (statement && c == '+' && string.CompareOrdinal(text, position + 1, close, 0, 2) == 0 && position + 3 <= length)
                {
                    position += 3; // +%} keeps the newline trim_blocks would remove
                    tokens.Add(new(JinjaTokenKind.CloseStatement, close, line));
                    return false;
                }
                if (string.CompareOrdinal(text, position, close, 0, 2) == 0 && position + 2 <= length)
                {
                    position += 2;
                    tokens.Add(new(statement ? JinjaTokenKind.CloseStatement : JinjaTokenKind.CloseExpression, close, line));
                    if (statement) TrimBlockNewline();
                    return false;
                }
            }
            if (c == '\'' || c == '"') { tokens.Add(new(JinjaTokenKind.String, LexString(c), line)); continue; }
            if (char.IsAsciiDigit(c)) { LexNumber(); continue; }
            if (char.IsAsciiLetter(c) || c == '_')
            {
                int start = position;
                while (position < length && (char.IsAsciiLetterOrDigit(text[position]) || text[position] == '_')) position++;
                tokens.Add(new(JinjaTokenKind.Name, text[start..position], line));
                continue;
            }
            string op = LexOperator() ?? throw Error($"unexpected character '{c}' inside a tag");
            if (op == "{") braceDepth++;
            else if (op == "}") braceDepth--;
            tokens.Add(new(JinjaTokenKind.Operator, op, line));
        }
    }

    static readonly string[] TwoCharOperators = ["**", "//", "==", "!=", "<=", ">="];
    const string OneCharOperators = "()[]{}.,:|+-*/%~<>=";

    string? LexOperator()
    {
        if (position + 1 < length)
        {
            foreach (var op in TwoCharOperators)
                if (text[position] == op[0] && text[position + 1] == op[1]) { position += 2; return op; }
        }
        char c = text[position];
        if (OneCharOperators.Contains(c)) { position++; return c.ToString(); }
        return null;
    }

    void LexNumber()
    {
        int start = position;
        while (position < length && (char.IsAsciiDigit(text[position]) || text[position] == '_')) position++;
        bool isFloat = false;
        if (position + 1 < length && text[position] == '.' && char.IsAsciiDigit(text[position + 1]))
        {
            isFloat = true;
            position++;
            while (position < length && char.IsAsciiDigit(text[position])) position++;
        }
        if (position < length && (text[position] == 'e' || text[position] == 'E'))
        {
            int save = position;
            position++;
            if (position < length && (text[position] == '+' || text[position] == '-')) position++;
            if (position < length && char.IsAsciiDigit(text[position]))
            {
                isFloat = true;
                while (position < length && char.IsAsciiDigit(text[position])) position++;
            }
            else position = save;
        }
        string literal = text[start..position].Replace("_", "");
        if (!isFloat && !long.TryParse(literal, NumberStyles.None, CultureInfo.InvariantCulture, out _))
            throw Error($"integer literal {literal} is too large");
        tokens.Add(new(isFloat ? JinjaTokenKind.Float : JinjaTokenKind.Integer, literal, line));
    }

    /// <summary>A quoted string with Python's escapes (an unknown escape keeps its backslash, as Python does).</summary>
    string LexString(char quote)
    {
        int startLine = line;
        position++;
        var value = new StringBuilder();
        while (true)
        {
            if (position >= length) throw JinjaErrors.At(source, startLine, "a string literal is never closed");
            char c = text[position++];
            if (c == quote) return value.ToString();
            if (c == '\n') line++;
            if (c != '\\') { value.Append(c); continue; }
            if (position >= length) throw JinjaErrors.At(source, startLine, "a string literal is never closed");
            char e = text[position++];
            switch (e)
            {
                case 'n': value.Append('\n'); break;
                case 't': value.Append('\t'); break;
                case 'r': value.Append('\r'); break;
                case 'b': value.Append('\b'); break;
                case 'f': value.Append('\f'); break;
                case 'v': value.Append('\v'); break;
                case 'a': value.Append('\a'); break;
                case '0': value.Append('\0'); break;
                case '\\': value.Append('\\'); break;
                case '\'': value.Append('\''); break;
                case '"': value.Append('"'); break;
                case '\n': line++; break;
                case 'x': value.Append(HexEscape(2)); break;
                case 'u': value.Append(HexEscape(4)); break;
                case 'U': value.Append(HexEscape(8)); break;
                default: value.Append('\\').Append(e); break;
            }
        }
    }

    string HexEscape(int digits)
    {
        if (position + digits > length || !int.TryParse(text.AsSpan(position, digits), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out int code)
            || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF && digits == 8))
            throw Error($"invalid \\{(digits == 2 ? 'x' : digits == 4 ? 'u' : 'U')} escape in a string literal");
        position += digits;
        return char.ConvertFromUtf32(code is >= 0xD800 and <= 0xDFFF ? 0xFFFD : code);
    }
}
