using System.Text.Json;
using Pargs.Templates;

namespace Pargs.Tests.Templates;

/// <summary>
/// One small template per Jinja feature (tools/chat-template-goldens/features.mjs), rendered by Pargs and compared
/// byte for byte with Jinja2 set up as transformers sets it up (render_jinja2.py). @huggingface/jinja's output is in
/// the golden too, but it lacks many of these features (string methods, several filters, Python's printing of
/// True/None), so it is not the reference here.
/// </summary>
public class JinjaFeatureGoldenTests
{
    static readonly DateTime FixedNow = new(2024, 7, 26, 14, 5, 0);

    public static TheoryData<string> Names()
    {
        var data = new TheoryData<string>();
        foreach (var c in Golden().RootElement.GetProperty("cases").EnumerateArray()) data.Add(c.GetProperty("name").GetString()!);
        return data;
    }

    static JsonDocument Golden() =>
        JsonDocument.Parse(File.ReadAllBytes(Path.Combine(ChatTemplateGoldenTests.GoldensFolder, "features.json")));

    [Theory]
    [MemberData(nameof(Names))]
    public void RendersLikeJinja2(string name)
    {
        using var golden = Golden();
        var c = golden.RootElement.GetProperty("cases").EnumerateArray().Single(x => x.GetProperty("name").GetString() == name);
        var variables = golden.RootElement.GetProperty("variables").EnumerateObject()
            .Select(p => new KeyValuePair<string, object?>(p.Name, p.Value));
        var template = JinjaTemplate.Parse(c.GetProperty("template").GetString()!, name);
        var expected = c.GetProperty("jinja2_expected");
        if (expected.ValueKind == JsonValueKind.String)
        {
            Assert.Equal(expected.GetString(), template.Render(variables, () => FixedNow));
        }
        else
        {
            var error = Assert.Throws<PargsException>(() => template.Render(variables, () => FixedNow));
            var jinja2Error = c.GetProperty("jinja2_error").GetString()!;
            Assert.Contains(jinja2Error[(jinja2Error.IndexOf(": ", StringComparison.Ordinal) + 2)..], error.Message);
        }
    }
}
