using Pargs.Data;
using Pargs.Templates;

namespace Pargs.Tests.Templates;

/// <summary>
/// A template is untrusted text: every error is a PargsException naming the template and line, and loops,
/// recursion, nesting and output are bounded. Also the tokenizer_config.json forms ChatTemplate reads.
/// </summary>
public class JinjaTemplateTests
{
    static string Render(string template, params (string Name, object? Value)[] variables) =>
        JinjaTemplate.Parse(template, "t.jinja").Render(variables.Select(v => new KeyValuePair<string, object?>(v.Name, v.Value)));

    static PargsException Fails(string template, params (string Name, object? Value)[] variables) =>
        Assert.Throws<PargsException>(() => Render(template, variables));

    [Theory]
    [InlineData("a\n{% if x %}\nb\n{% endfor %}", "line 4")]          // wrong end tag
    [InlineData("a\nb {{ x ", "line 2")]                              // tag never closed
    [InlineData("{% for x in y %}\n\nno end", "ends inside a block")]
    [InlineData("x\n{{ 'unterminated }}", "line 2: a string literal is never closed")]
    [InlineData("{% frobnicate %}", "unknown or unsupported statement")]
    [InlineData("{{ 1 + }}", "line 1: unexpected")]
    [InlineData("{# never closed", "never closed")]
    public void SyntaxErrorsNameTheTemplateAndLine(string template, string expected)
    {
        var error = Assert.Throws<PargsException>(() => JinjaTemplate.Parse(template, "models/x/tokenizer_config.json"));
        Assert.Contains("chat template models/x/tokenizer_config.json", error.Message);
        Assert.Contains(expected, error.Message);
    }

    [Fact]
    public void RenderErrorsNameTheLine()
    {
        Assert.Contains("t.jinja, line 3: unknown filter 'nosuch'", Fails("a\n\n{{ x | nosuch }}").Message);
        Assert.Contains("line 2: the template raised an error: roles must alternate", Fails("ok\n{{ raise_exception('roles must alternate') }}").Message);
        Assert.Contains("line 1: 'message' is undefined", Fails("{{ message.content }}").Message);
        Assert.Contains("unsupported operand type(s) for +: 'str' and 'int'", Fails("{{ 'a' + 1 }}").Message);
        Assert.Contains("'nope' is undefined", Fails("{{ nope() }}").Message);
        Assert.Contains("only a namespace() takes attributes", Fails("{% set d = {} %}{% set d.x = 1 %}").Message);
    }

    [Fact]
    public void TheEnvironmentIsImmutable()
    {
        var error = Fails("{{ messages.append(1) }}", ("messages", new List<object?>()));
        Assert.Contains("unsafe", error.Message);
        Assert.Contains("unsafe", Fails("{% set d = {'a': 1} %}{{ d.update({'b': 2}) }}").Message);
    }

    [Fact]
    public void UndefinedBehavesAsJinjasDefault()
    {
        Assert.Equal("[]|no|0|dflt", Render("[{{ x }}]|{{ 'yes' if x else 'no' }}|{{ x | length }}|{{ x | default('dflt') }}{% for i in x %}never{% endfor %}"));
        Assert.Equal("True False", Render("{{ m.missing is undefined }} {{ m.content is undefined }}", ("m", new Dictionary<string, object?> { ["content"] = "c" })));
        Assert.Contains("is undefined", Fails("{{ x + 1 }}").Message);
        Assert.Contains("is undefined", Fails("{{ x.y.z }}").Message);
    }

    [Fact]
    public void LoopsAreBounded()
    {
        Assert.Contains($"more than {JinjaLimits.MaxLoopIterations} loop iterations", Fails("{% for i in range(100000000) %}{% endfor %}").Message);
        Assert.Contains("loop iterations", Fails("{% for i in range(2000) %}{% for j in range(2000) %}{% endfor %}{% endfor %}").Message);
    }

    [Fact]
    public void RecursionIsBounded()
    {
        var error = Fails("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}\n{{ f(0) }}");
        Assert.Contains("macro calls nest deeper than", error.Message);
        Assert.Contains("nests deeper than", Assert.Throws<PargsException>(() => JinjaTemplate.Parse("{{ " + new string('(', 5000) + "1" + new string(')', 5000) + " }}", "t")).Message);
        // A long flat operator chain parses without recursion but evaluates as a deep tree: an error, never a crash.
        var chain = "{{ 0" + string.Concat(Enumerable.Repeat(" + 1", 50_000)) + " }}";
        var deep = Record.Exception(() => Render(chain));
        Assert.True(deep is null or PargsException, deep?.GetType().Name);
        // Values nested by a loop print as an error, not a stack overflow.
        var nested = Record.Exception(() => Render("{% set ns = namespace(x=[]) %}{% for i in range(30000) %}{% set ns.x = [ns.x] %}{% endfor %}{{ ns.x }}"));
        Assert.True(nested is null or PargsException, nested?.GetType().Name);
    }

    [Fact]
    public void OutputIsBounded()
    {
        Assert.Contains("exceeds", Fails("{% for i in range(200) %}{{ 'x' * 100000 }}{% endfor %}").Message);
        Assert.Contains("string repetition", Fails("{{ 'x' * 1000000000 }}").Message);
        Assert.Contains("output limit", Fails("{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}").Message);
    }

    [Fact]
    public void IntegerEdgesAreErrorsNotCrashes()
    {
        Assert.Equal("b|c", Render("{{ 'abc'[1::9223372036854775807] }}|{{ 'abc'[::-9223372036854775807] }}"));
        Assert.Contains("string repetition", Fails("{{ 'ab' * 9223372036854775807 }}").Message);
        Assert.Contains("list repetition", Fails("{{ [1] * 9223372036854775807 }}").Message);
        Assert.Contains("integer overflow", Fails("{{ (-9223372036854775807 - 1) | abs }}").Message);
        Assert.Contains("integer overflow", Fails("{{ -(-9223372036854775807 - 1) }}").Message);
        Assert.Contains("integer overflow", Fails("{{ 9223372036854775807 + 1 }}").Message);
        Assert.Contains("range() bounds overflow", Fails("{{ range(-9223372036854775807, 9223372036854775807) | list }}").Message);
        Assert.Contains("too large", Assert.Throws<PargsException>(() => JinjaTemplate.Parse("{{ 99999999999999999999 }}", "t")).Message);
    }

    [Fact]
    public void StrftimeNowUsesTheInjectedClock()
    {
        var template = JinjaTemplate.Parse("{{ strftime_now('%d %b %Y') }}|{{ strftime_now('%Y-%m-%d %H:%M:%S %A %B %-d %j %I%p') }}", "t");
        Assert.Equal("05 Mar 2025|2025-03-05 17:04:09 Wednesday March 5 064 05PM", template.Render([], () => new DateTime(2025, 3, 5, 17, 4, 9)));
    }

    [Fact]
    public void ReadsTheListOfNamedTemplatesAndAddedTokenObjects()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("tokenizer_config.json"), """
            {"bos_token": {"content": "<s>", "lstrip": false, "__type": "AddedToken"}, "eos_token": "</s>", "unk_token": null,
             "chat_template": [{"name": "default", "template": "{{ bos_token }}{% for m in messages %}{{ m.role }}:{{ m.content }};{% endfor %}{{ eos_token }}{{ tools is none }}"},
                               {"name": "tool_use", "template": "tools={{ tools | length }}"}]}
            """);
        var chat = ChatTemplate.FromTokenizerConfig(dir.Path);
        Assert.Equal("<s>user:hi;</s>True", chat.Render([new ChatMessage(ChatMessage.User, "hi")], addGenerationPrompt: false));
        Assert.False(chat.SpecialTokens.ContainsKey("unk_token"));
        var toolUse = ChatTemplate.FromTokenizerConfig(dir.File("tokenizer_config.json"), "tool_use");
        Assert.Equal("tools=2", toolUse.Render([], false, new Dictionary<string, object?> { ["tools"] = new[] { "a", "b" } }));
        var missing = Assert.Throws<PargsException>(() => ChatTemplate.FromTokenizerConfig(dir.Path, "rag"));
        Assert.Contains("no template named 'rag' (it has: default, tool_use)", missing.Message);
    }

    [Fact]
    public void ConfigProblemsAreNamed()
    {
        using var dir = new TempDir();
        var path = dir.File("tokenizer_config.json");
        File.WriteAllText(path, """{"eos_token": "</s>"}""");
        Assert.False(ChatTemplate.Exists(dir.Path));
        Assert.Contains("no chat_template", Assert.Throws<PargsException>(() => ChatTemplate.FromTokenizerConfig(path)).Message);
        File.WriteAllText(dir.File("chat_template.jinja"), "{{ eos_token }}!\n");
        Assert.True(ChatTemplate.Exists(dir.Path));
        Assert.Equal("</s>!", ChatTemplate.FromTokenizerConfig(dir.Path).Render([], false));
        File.WriteAllText(path, """{"chat_template": 3}""");
        Assert.Contains("chat_template must be a string or a list", Assert.Throws<PargsException>(() => ChatTemplate.FromTokenizerConfig(path)).Message);
        File.WriteAllText(path, """{"chat_template": "{% if %}"}""");
        Assert.Contains($"chat template {path}, line 1", Assert.Throws<PargsException>(() => ChatTemplate.FromTokenizerConfig(path)).Message);
        File.WriteAllText(path, "{not json");
        Assert.Contains("invalid JSON", Assert.Throws<PargsException>(() => ChatTemplate.FromTokenizerConfig(path)).Message);
        Assert.Contains("file not found", Assert.Throws<PargsException>(() => ChatTemplate.FromTokenizerConfig(dir.File("none.json"))).Message);
    }
}
