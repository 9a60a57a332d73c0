using System.Text;
using System.Text.Json;
using Pargs.Benchmarks;
using Pargs.Server;

namespace Pargs.Tests.Server;

/// <summary>
/// Completions' log-probabilities with <c>return_tokens_as_token_ids</c> (what a remote engine reads every step): the
/// names written from the stack are byte for byte the "token_id:N" strings OpenAI's shape has, checked against a writer
/// that builds those strings.
/// </summary>
public class LogProbsJsonTests
{
    /// <summary>The reference: completions' shape written from "token_id:{id}" strings and a set of the names written.</summary>
    static string ByStrings(IReadOnlyList<TokenLogProbs> tokens, int textOffset)
    {
        var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, CompletionChunkWriter.Options))
        {
            w.WriteStartObject();
            w.WriteStartArray("tokens");
            foreach (var t in tokens) w.WriteStringValue($"token_id:{t.Token}");
            w.WriteEndArray();
            w.WriteStartArray("token_logprobs");
            foreach (var t in tokens) LogProbsJson.Number(w, t.LogProb);
            w.WriteEndArray();
            w.WriteStartArray("top_logprobs");
            foreach (var t in tokens)
            {
                w.WriteStartObject();
                var seen = new HashSet<string>();
                foreach (var (id, logProb) in t.Top)
                {
                    if (!seen.Add($"token_id:{id}")) continue;
                    w.WritePropertyName($"token_id:{id}");
                    LogProbsJson.Number(w, logProb);
                }
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteStartArray("text_offset");
            int offset = textOffset;
            foreach (var t in tokens)
            {
                w.WriteNumberValue(offset);
                offset += $"<{t.Token}>".Length; // IdTokenizer's text of a token
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    static string Written(IReadOnlyList<TokenLogProbs> tokens, int textOffset)
    {
        var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, CompletionChunkWriter.Options))
            LogProbsJson.WriteCompletion(w, tokens, new IdTokenizer(32000), tokensAsIds: true, textOffset);
        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    [Fact]
    public void Token_id_names_are_the_strings_of_openai_shape_byte_for_byte()
    {
        var tokens = new[]
        {
            // one digit, ten digits (int.MaxValue), −∞ (written as −9999), and a repeated id whose first value stands
            new TokenLogProbs(0, -0.25f, [(0, -0.25f), (7, -1.5f), (int.MaxValue, float.NegativeInfinity), (7, -3f), (1_000_000_000, -2.75f)]),
            new TokenLogProbs(31999, -1e-7f, [(31999, -1e-7f), (12345, -17.125f)]),
            new TokenLogProbs(42, -3.4028235e38f, []),
        };
        Assert.Equal(ByStrings(tokens, 5), Written(tokens, 5));
        Assert.Contains("\"token_id:2147483647\":-9999", Written(tokens, 0));
    }

    [Fact]
    public void Random_tops_match_the_reference()
    {
        var random = new Random(18);
        for (int trial = 0; trial < 200; trial++)
        {
            var tokens = Enumerable.Range(0, random.Next(1, 4)).Select(_ =>
            {
                var top = Enumerable.Range(0, random.Next(0, 12)).Select(_ => (random.Next(random.Next(2) == 0 ? 20 : int.MaxValue), -(float)random.NextDouble() * 30)).ToArray();
                return new TokenLogProbs(random.Next(32000), -(float)random.NextDouble(), top);
            }).ToArray();
            Assert.Equal(ByStrings(tokens, trial), Written(tokens, trial));
        }
    }

    /// <summary>Chat's entries name a token as "token_id:N" too (written from the stack as completions' are), with its bytes.</summary>
    [Fact]
    public void Chat_entries_name_tokens_by_id_as_openai_shape_does()
    {
        var tokens = new[]
        {
            new TokenLogProbs(0, -0.25f, [(0, -0.25f), (int.MaxValue, -1.5f)]),
            new TokenLogProbs(31999, -1e-7f, [(31999, -1e-7f), (12345, -17.125f)]),
        };
        var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, CompletionChunkWriter.Options))
            LogProbsJson.WriteChat(w, tokens, new IdTokenizer(32000), tokensAsIds: true);
        using var doc = JsonDocument.Parse(buffer.ToArray());
        var content = doc.RootElement.GetProperty("content");
        Assert.Equal(tokens.Length, content.GetArrayLength());
        for (int i = 0; i < tokens.Length; i++)
        {
            var entry = content[i];
            Assert.Equal($"token_id:{tokens[i].Token}", entry.GetProperty("token").GetString());
            Assert.Equal(Encoding.UTF8.GetBytes($"<{tokens[i].Token}>"), entry.GetProperty("bytes").EnumerateArray().Select(b => (byte)b.GetInt32()).ToArray());
            var top = entry.GetProperty("top_logprobs");
            Assert.Equal(tokens[i].Top.Select(t => $"token_id:{t.Token}"), top.EnumerateArray().Select(t => t.GetProperty("token").GetString()));
        }
    }
}
