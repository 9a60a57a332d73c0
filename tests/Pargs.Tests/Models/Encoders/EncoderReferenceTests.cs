using System.Text.Json.Nodes;
using Pargs.Rewards;
using Pargs.Tokenizers;
using static TorchSharp.torch;

namespace Pargs.Tests.Models.Encoders;

/// <summary>
/// Each encoder family against the plain-loop reference (<see cref="EncoderReference"/>) on tiny random checkpoints in
/// the real format: a right-padded batch of texts and pairs of different lengths, logits ≤ 1e-4 of the reference run on
/// each row alone and unpadded.
/// </summary>
public class EncoderReferenceTests : IDisposable
{
    readonly TempDir _dir = new();
    public void Dispose() => _dir.Dispose();

    internal static readonly (string Prompt, string Response)[] Texts =
    [
        ("Once upon a time", " there was a little girl named Lily."),
        ("Human: How do I bake bread?\n\nAssistant:", " Mix flour, water, yeast and salt, let it rise, then bake it for half an hour."),
        ("Hi", "!"),
        ("The dog was sad because", " it rained all day and nobody came to play with him in the garden, so he slept by the door until the evening."),
        ("Café naïve", " résumé — 12345 😀"),
    ];

    public static TheoryData<string> Families => new() { "bert", "roberta", "distilbert", "deberta-v3", "deberta-v2" };

    internal static JsonObject ConfigOf(string family) => family switch
    {
        "bert" => TinyEncoders.Bert(),
        "roberta" => TinyEncoders.Roberta(),
        "distilbert" => TinyEncoders.DistilBert(),
        "deberta-v3" => TinyEncoders.DebertaV3(),
        _ => TinyEncoders.DebertaV2(),
    };

    [Theory]
    [MemberData(nameof(Families))]
    public void Padded_batch_logits_match_the_reference_of_each_row_alone(string family)
    {
        var config = ConfigOf(family);
        config[EncoderInputs.ConfigField] = family is "bert" or "deberta-v2" or "roberta" ? "pair" : "text";
        config[RewardLabel.ConfigField] = "0";
        string dir = TinyEncoders.Write(_dir.File(family), config, seed: family.Length * 7 + 1);
        using var rm = EncoderRewardModel.Load(dir);
        var reference = TinyEncoders.Reference(dir);

        var rows = Texts.Select(t => rm.Encode(t.Prompt, t.Response)).ToList();
        int longest = rows.Max(r => r.Ids.Length);
        Assert.True(longest > 24, $"the texts should be long enough to reach the clamped / log-bucketed distances ({longest} tokens)");
        if (family is "bert" or "deberta-v2") Assert.Contains(1, rows[0].TypeIds); // pairs carry type 1 to the models that read it
        float[] logits;
        using (no_grad()) logits = rm.Logits(rows, longest + 5).data<float>().ToArray();
        int labels = rm.Classifier.Config.NumLabels;
        for (int r = 0; r < rows.Count; r++)
        {
            var expected = reference.Logits(rows[r].Ids, rows[r].TypeIds);
            Assert.Equal(labels, expected.Length);
            for (int l = 0; l < labels; l++)
                Assert.True(Math.Abs(expected[l] - logits[r * labels + l]) <= 1e-4, $"{family} row {r} label {l}: reference {expected[l]}, Pargs {logits[r * labels + l]}");
        }
        // The logits are not degenerate: rows differ from each other.
        Assert.Contains(Enumerable.Range(1, rows.Count - 1), r => Math.Abs(logits[r * labels] - logits[0]) > 1e-3);

        // Batched by length buckets (Score) = one forward per row, unpadded.
        var batched = rm.Score(rows);
        for (int r = 0; r < rows.Count; r++)
            Assert.Equal(rm.Forward([rows[r]], rows[r].Ids.Length)[0], batched[r], 4);
    }

    [Fact]
    public void Log_buckets_keep_short_distances_and_compress_long_ones_as_transformers_does()
    {
        // bucket 256, max 512 (DeBERTa-v3): |δ| ≤ 128 exact; beyond, ceil(log(|δ|/128)/log(511/128)·127) + 128.
        Assert.Equal(5, Pargs.Models.Encoders.DebertaV2Model.LogBucket(5, 256, 512));
        Assert.Equal(-128, Pargs.Models.Encoders.DebertaV2Model.LogBucket(-128, 256, 512));
        Assert.Equal(128 + (long)Math.Ceiling(Math.Log(129 / 128.0) / Math.Log(511 / 128.0) * 127), Pargs.Models.Encoders.DebertaV2Model.LogBucket(129, 256, 512));
        Assert.Equal(255, Pargs.Models.Encoders.DebertaV2Model.LogBucket(511, 256, 512));
        Assert.Equal(-255, Pargs.Models.Encoders.DebertaV2Model.LogBucket(-511, 256, 512));
    }

    [Fact]
    public void Pair_inputs_carry_the_special_tokens_and_token_type_ids_of_the_rust_library()
    {
        var config = TinyEncoders.Bert();
        config[EncoderInputs.ConfigField] = "pair";
        using var rm = EncoderRewardModel.Load(TinyEncoders.Write(_dir.File("bert"), config, seed: 3), rewardLabel: "POSITIVE");
        var corpus = Tokenizers.TokenizerGoldens.Corpus;
        var goldens = Tokenizers.TokenizerGoldens.Read("bert");
        int checkedPairs = 0;
        for (int i = 0; i < goldens.Count && checkedPairs < 40; i++)
        {
            if (goldens[i].PairIds is not { } ids || ids.Length > rm.Classifier.Config.MaxTokens) continue;
            var encoding = rm.Encode(corpus[i], corpus[i + 1]);
            Assert.Equal(ids, encoding.Ids);
            Assert.Equal(goldens[i].PairTypeIds, encoding.TypeIds);
            checkedPairs++;
        }
        Assert.True(checkedPairs >= 20, $"only {checkedPairs} golden pairs fit the tiny model");
        // The type ids change the reward: the same tokens read as one text score differently.
        var pair = rm.Encode("Is it good?", "Yes it is.");
        Assert.Contains(1, pair.TypeIds);
        var asText = new TokenizerEncoding(pair.Ids, new int[pair.Ids.Length]);
        Assert.NotEqual(rm.Score([pair])[0], rm.Score([asText])[0]);
    }
}
