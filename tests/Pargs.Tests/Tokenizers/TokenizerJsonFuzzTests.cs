using System.Text;
using System.Text.Json.Nodes;
using Pargs.Tokenizers;

namespace Pargs.Tests.Tokenizers;

/// <summary>
/// Seeded mutations of small real-shaped tokenizer.json files (byte flips, truncations, values of the wrong
/// type, huge numbers, deep nesting): loading and then encoding/decoding a few texts either works or throws
/// <see cref="PargsException"/> — never another exception type.
/// </summary>
public class TokenizerJsonFuzzTests : IDisposable
{
    readonly string _dir = Path.Combine(Path.GetTempPath(), $"pargs-tokfuzz-{Guid.NewGuid():N}");

    public TokenizerJsonFuzzTests() => Directory.CreateDirectory(_dir);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    static readonly JsonNode[] Replacements =
    [
        JsonValue.Create(5)!, JsonValue.Create(-1)!, JsonValue.Create(1e300)!, JsonValue.Create(2147483648L)!, JsonValue.Create("x")!,
        JsonValue.Create("")!, JsonValue.Create(true)!, new JsonArray(), new JsonObject(), JsonValue.Create("(")!, JsonValue.Create("Isolated")!,
    ];

    [Theory]
    [InlineData("bert")]
    [InlineData("llama2")]
    [InlineData("deberta")]
    [InlineData("roberta")]
    public void Mutated_files_load_or_fail_with_a_pargs_exception(string name)
    {
        var original = File.ReadAllText(Path.Combine(TokenizerGoldens.Fixtures, name, "tokenizer.json"));
        var random = new Random(name.Length * 7919 + name[0]); // seeded per file (string hashes vary per process)
        int cases = 0;
        for (int c = 0; c < 150; c++)
        {
            string text;
            switch (c % 4)
            {
                case 0: // a field replaced by a value of another type
                {
                    var copy = JsonNode.Parse(original)!.AsObject();
                    var targets = new List<(JsonNode Parent, object Key)>();
                    Collect(copy, targets, 0);
                    var (parent, key) = targets[random.Next(targets.Count)];
                    var value = Replacements[random.Next(Replacements.Length)].DeepClone();
                    if (parent is JsonObject o) o[(string)key] = value; else ((JsonArray)parent)[(int)key] = value;
                    text = copy.ToJsonString();
                    break;
                }
                case 1: // truncated
                    text = original[..random.Next(original.Length)];
                    break;
                case 2: // flipped bytes
                {
                    var bytes = Encoding.UTF8.GetBytes(original);
                    for (int i = 0; i < 4; i++) bytes[random.Next(bytes.Length)] ^= (byte)(1 << random.Next(8));
                    text = Encoding.UTF8.GetString(bytes);
                    break;
                }
                default: // a pipeline part nested deeply
                {
                    var copy = JsonNode.Parse(original)!.AsObject();
                    JsonNode nested = new JsonObject { ["type"] = "Lowercase" };
                    for (int d = 0; d < 40 + random.Next(40); d++) nested = new JsonObject { ["type"] = "Sequence", ["normalizers"] = new JsonArray(nested) };
                    copy["normalizer"] = nested;
                    text = copy.ToJsonString();
                    break;
                }
            }
            var path = Path.Combine(_dir, $"case{c}", "tokenizer.json");
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            File.WriteAllText(path, text);
            try
            {
                var tokenizer = TokenizerJson.Load(path);
                foreach (var sample in TokenizerGoldens.Corpus.Take(40))
                {
                    var ids = tokenizer.Encode(sample, addBos: true);
                    tokenizer.Decode(ids, skipSpecial: false);
                }
            }
            catch (PargsException) { }
            catch (Exception e)
            {
                Assert.Fail($"{name} case {c}: {e.GetType().Name}: {e.Message}\n{(text.Length > 400 ? text[..400] : text)}");
            }
            cases++;
        }
        Assert.Equal(150, cases);
    }

    /// <summary>Every field and list item outside the vocabulary and merges (too many to pick from usefully).</summary>
    static void Collect(JsonNode node, List<(JsonNode Parent, object Key)> paths, int depth)
    {
        if (node is JsonObject o)
        {
            foreach (var (key, value) in o.ToList())
            {
                if (key is "vocab" or "merges" && depth == 1) continue;
                paths.Add((o, key));
                if (value is not null) Collect(value, paths, depth + 1);
            }
        }
        else if (node is JsonArray a)
        {
            for (int i = 0; i < a.Count; i++)
            {
                paths.Add((a, i));
                if (a[i] is { } item) Collect(item, paths, depth + 1);
            }
        }
    }
}
