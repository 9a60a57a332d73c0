namespace Pargs.Templates;

enum JinjaTokenKind
{
    Text,
    OpenStatement,   // {%
    CloseStatement,  // %}
    OpenExpression,  // {{
    CloseExpression, // }}
    Name,
    String,
    Integer,
    Float,
    Operator,        // punctuation and operators: ( ) [ ] { } . , : | + - * / // % ** ~ == != < > <= >= =
    End,
}

/// <summary>One lexical unit of a template; <see cref="Line"/> is 1-based in the template source, for errors.</summary>
readonly record struct JinjaToken(JinjaTokenKind Kind, string Value, int Line)
{
    public bool Is(JinjaTokenKind kind, string value) => Kind == kind && Value == value;
    public bool IsOperator(string value) => Kind == JinjaTokenKind.Operator && Value == value;
    public bool IsName(string value) => Kind == JinjaTokenKind.Name && Value == value;
    public override string ToString() => Kind switch
    {
        JinjaTokenKind.End => "end of template",
        JinjaTokenKind.Text => "text",
        JinjaTokenKind.String => $"string '{Value}'",
        _ => $"'{Value}'",
    };
}
