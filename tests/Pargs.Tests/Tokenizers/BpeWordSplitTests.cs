using System.Text.Json.Nodes;
using Pargs.Tokenizers;

namespace Pargs.Tests.Tokenizers;

/// <summary>
/// A SentencePiece-style tokenizer.json (Metaspace normalizer, no pre-tokenizer) hands BPE a whole text as one piece;
/// BpeModel splits it before each "▁" when no merge can reach across one. Checked against a written reference BPE (the
/// lowest-ranked adjacent pair merged first, leftmost on ties, over the whole text) on long texts, and refused where a
/// merge does reach across.
/// </summary>
public class BpeWordSplitTests : IDisposable
{
    readonly string _dir = Path.Combine(Path.GetTempPath(), $"pargs-bpesplit-{Guid.NewGuid():N}");

    public BpeWordSplitTests() => Directory.CreateDirectory(_dir);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    const string Story = "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. "
        + "One day, she saw a big red ball under a tree. She ran to the ball and kicked it very hard. The ball flew "
        + "over the fence and into the pond. Lily was sad, but her mom said: \"Don't worry, we will get a new one!\" "
        + "They went home and had cake and milk. Lily smiled and said thank you to her mom.";

    [Fact]
    public void Long_texts_of_the_shipped_partial_rm_tokenizer_match_the_reference_bpe()
    {
        string path = Path.Combine(TestPaths.ShippedPartialRm, "tokenizer.json");
        var tokenizer = TokenizerJson.Load(path);
        var (vocab, ranks) = VocabAndRanks(JsonNode.Parse(File.ReadAllText(path))!["model"]!);
        Assert.True(Story.Length > 256); // beyond the word cache's length: the whole text was merged every time before
        foreach (string text in new[] { Story, Story + " " + Story, "Lily", "  two  spaces  ", Story[..200] + "x" })
        {
            Assert.All(text, c => Assert.True(vocab.ContainsKey(c == ' ' ? "▁" : c.ToString()), $"'{c}' is not in the vocabulary"));
            var expected = ReferenceBpe("▁" + text.Replace(' ', '▁'), ranks).Select(s => vocab[s]).ToArray();
            Assert.Equal(expected, tokenizer.Encode(text, addBos: false));
        }
    }

    [Fact]
    public void A_merge_across_the_space_marker_keeps_the_text_whole()
    {
        // "a▁" and "▁b" ... "a▁b": merges that reach across "▁"; splitting before each "▁" would give other ids.
        var vocab = new JsonObject { ["▁"] = 0, ["a"] = 1, ["b"] = 2, ["a▁"] = 3, ["a▁b"] = 4, ["▁a"] = 5 };
        var merges = new JsonArray("a ▁", "a▁ b", "▁ a");
        string path = Write("across.json", vocab, merges);
        var tokenizer = TokenizerJson.Load(path);
        // "▁a▁b▁a": a▁ (rank 0) at 1 → "▁", "a▁", "b", "▁", "a"; then a▁b (rank 1) → "▁", "a▁b", "▁", "a"; then ▁a (rank 2) → "▁", "a▁b", "▁a".
        Assert.Equal(new[] { 0, 4, 5 }, tokenizer.Encode("a b a", addBos: false));
        var ranks = new Dictionary<(string, string), int> { [("a", "▁")] = 0, [("a▁", "b")] = 1, [("▁", "a")] = 2 };
        var ids = new Dictionary<string, int> { ["▁"] = 0, ["a"] = 1, ["b"] = 2, ["a▁"] = 3, ["a▁b"] = 4, ["▁a"] = 5 };
        Assert.Equal(ReferenceBpe("▁a▁b▁a", ranks).Select(s => ids[s]), tokenizer.Encode("a b a", addBos: false));
    }

    [Fact]
    public void Words_within_merges_split_and_match_the_reference()
    {
        var vocab = new JsonObject { ["▁"] = 0, ["a"] = 1, ["b"] = 2, ["▁a"] = 3, ["ab"] = 4, ["▁ab"] = 5, ["bb"] = 6 };
        var merges = new JsonArray("a b", "▁ a", "▁a b", "b b");
        string path = Write("within.json", vocab, merges);
        var tokenizer = TokenizerJson.Load(path);
        var (ids, ranks) = VocabAndRanks(JsonNode.Parse(File.ReadAllText(path))!["model"]!);
        var random = new Random(7);
        for (int trial = 0; trial < 50; trial++)
        {
            string text = new(Enumerable.Range(0, random.Next(1, 400)).Select(_ => "ab "[random.Next(3)]).ToArray());
            var expected = ReferenceBpe("▁" + text.Replace(' ', '▁'), ranks).Select(s => ids[s]).ToArray();
            Assert.Equal(expected, tokenizer.Encode(text, addBos: false));
        }
    }

    string Write(string name, JsonObject vocab, JsonArray merges)
    {
        var doc = new JsonObject
        {
            ["normalizer"] = new JsonObject
            {
                ["type"] = "Sequence",
                ["normalizers"] = new JsonArray(
                    new JsonObject { ["type"] = "Prepend", ["prepend"] = "▁" },
                    new JsonObject { ["type"] = "Replace", ["pattern"] = new JsonObject { ["String"] = " " }, ["content"] = "▁" }),
            },
            ["model"] = new JsonObject { ["type"] = "BPE", ["vocab"] = vocab, ["merges"] = merges },
        };
        string path = Path.Combine(_dir, name);
        File.WriteAllText(path, doc.ToJsonString());
        return path;
    }

    static (Dictionary<string, int> Vocab, Dictionary<(string, string), int> Ranks) VocabAndRanks(JsonNode model)
    {
        var vocab = model["vocab"]!.AsObject().ToDictionary(p => p.Key, p => (int)p.Value!);
        var ranks = new Dictionary<(string, string), int>();
        int rank = 0;
        foreach (var merge in model["merges"]!.AsArray())
        {
            var parts = merge is JsonArray pair ? new[] { (string)pair[0]!, (string)pair[1]! } : ((string)merge!).Split(' ', 2);
            ranks.TryAdd((parts[0], parts[1]), rank++);
        }
        return (vocab, ranks);
    }

    /// <summary>BPE over the whole text: repeatedly merge the adjacent pair of lowest rank (leftmost on ties).</summary>
    static List<string> ReferenceBpe(string text, Dictionary<(string, string), int> ranks)
    {
        var symbols = text.EnumerateRunes().Select(r => r.ToString()).ToList();
        while (true)
        {
            int best = -1, bestRank = int.MaxValue;
            for (int i = 0; i + 1 < symbols.Count; i++)
                if (ranks.TryGetValue((symbols[i], symbols[i + 1]), out int rank) && rank < bestRank) (best, bestRank) = (i, rank);
            if (best < 0) return symbols;
            symbols[best] += symbols[best + 1];
            symbols.RemoveAt(best + 1);
        }
    }
}
