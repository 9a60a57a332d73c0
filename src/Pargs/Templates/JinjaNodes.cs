namespace Pargs.Templates;

// The syntax tree of a template. Every node keeps the source line it starts on, for error messages.

abstract record JinjaNode(int Line);

// ---- Statements ----
sealed record TextNode(string Text, int Line) : JinjaNode(Line);
sealed record OutputNode(JinjaExpr Value, int Line) : JinjaNode(Line);
sealed record IfNode(JinjaExpr Condition, List<JinjaNode> Body, List<JinjaNode> Else, int Line) : JinjaNode(Line);
/// <summary><c>{% for targets in iterable [if filter] %}body{% else %}empty{% endfor %}</c>.</summary>
sealed record ForNode(List<string> Targets, JinjaExpr Iterable, JinjaExpr? Filter, List<JinjaNode> Body, List<JinjaNode> Empty, int Line) : JinjaNode(Line);
/// <summary><c>{% set a = v %}</c>, <c>{% set a, b = v %}</c>, <c>{% set ns.attr = v %}</c>.</summary>
sealed record SetNode(List<string> Targets, string? Attribute, JinjaExpr Value, int Line) : JinjaNode(Line);
/// <summary><c>{% set a %}body{% endset %}</c>, optionally filtered: <c>{% set a | trim %}</c>.</summary>
sealed record BlockSetNode(string Target, List<FilterCall> Filters, List<JinjaNode> Body, int Line) : JinjaNode(Line);
sealed record MacroNode(string Name, List<MacroParameter> Parameters, List<JinjaNode> Body, int Line) : JinjaNode(Line);
/// <summary><c>{% call(params) macro(args) %}body{% endcall %}</c>: the body becomes the macro's <c>caller()</c>.</summary>
sealed record CallBlockNode(CallExpr Call, List<MacroParameter> CallerParameters, List<JinjaNode> Body, int Line) : JinjaNode(Line);
sealed record FilterBlockNode(List<FilterCall> Filters, List<JinjaNode> Body, int Line) : JinjaNode(Line);
sealed record BreakNode(int Line) : JinjaNode(Line);
sealed record ContinueNode(int Line) : JinjaNode(Line);
/// <summary>A bare expression statement: <c>{% do expr %}</c>.</summary>
sealed record DoNode(JinjaExpr Value, int Line) : JinjaNode(Line);

sealed record MacroParameter(string Name, JinjaExpr? Default);

// ---- Expressions ----
abstract record JinjaExpr(int Line) : JinjaNode(Line);
sealed record LiteralExpr(object? Value, int Line) : JinjaExpr(Line);
sealed record NameExpr(string Name, int Line) : JinjaExpr(Line);
sealed record ListExpr(List<JinjaExpr> Items, int Line, bool IsTuple = false) : JinjaExpr(Line);
sealed record DictExpr(List<(JinjaExpr Key, JinjaExpr Value)> Items, int Line) : JinjaExpr(Line);
sealed record AttributeExpr(JinjaExpr Target, string Name, int Line) : JinjaExpr(Line);
sealed record IndexExpr(JinjaExpr Target, JinjaExpr Index, int Line) : JinjaExpr(Line);
sealed record SliceExpr(JinjaExpr Target, JinjaExpr? Start, JinjaExpr? Stop, JinjaExpr? Step, int Line) : JinjaExpr(Line);
sealed record CallExpr(JinjaExpr Callee, List<JinjaExpr> Positional, List<(string Name, JinjaExpr Value)> Named, int Line) : JinjaExpr(Line);
sealed record FilterCall(string Name, List<JinjaExpr> Positional, List<(string Name, JinjaExpr Value)> Named, int Line);
sealed record FilterExpr(JinjaExpr Value, FilterCall Filter, int Line) : JinjaExpr(Line);
sealed record TestExpr(JinjaExpr Value, string Test, List<JinjaExpr> Arguments, bool Negated, int Line) : JinjaExpr(Line);
sealed record UnaryExpr(string Operator, JinjaExpr Operand, int Line) : JinjaExpr(Line);
sealed record BinaryExpr(string Operator, JinjaExpr Left, JinjaExpr Right, int Line) : JinjaExpr(Line);
/// <summary><c>a and b</c> / <c>a or b</c>: short-circuit, returning an operand as Python does.</summary>
sealed record LogicalExpr(bool IsAnd, JinjaExpr Left, JinjaExpr Right, int Line) : JinjaExpr(Line);
sealed record CompareExpr(JinjaExpr First, List<(string Operator, JinjaExpr Operand)> Rest, int Line) : JinjaExpr(Line);
sealed record ConditionalExpr(JinjaExpr Condition, JinjaExpr Then, JinjaExpr? Else, int Line) : JinjaExpr(Line);
