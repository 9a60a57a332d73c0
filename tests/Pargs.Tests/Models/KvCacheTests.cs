using Pargs.Models;
using static TorchSharp.torch;

namespace Pargs.Tests.Models;

/// <summary>
/// The model against the naive reference, and cached incremental decoding against full recomputation, for
/// every family, with batches whose rows have different lengths (left padding, per-row positions).
/// </summary>
public class KvCacheTests
{
    public static TheoryData<string> Families => new() { "llama", "qwen2", "gpt2" };

    static ModelConfig Config(string family) => family switch
    {
        "llama" => TinyModels.LlamaConfig(),
        "qwen2" => TinyModels.Qwen2Config(),
        _ => TinyModels.Gpt2Config(),
    };

    static Tensor Reference(ModelConfig c, CausalLM model, long[] ids)
    {
        var w = model.StateDictForSaving();
        return c.ModelType == "gpt2" ? ReferenceForward.Gpt2(c, w, ids) : ReferenceForward.Llama(c, w, ids);
    }

    [Theory, MemberData(nameof(Families))]
    public void Full_forward_matches_the_naive_reference(string family)
    {
        var c = Config(family);
        using var model = TinyModels.RandomLM(c);
        using var _ = no_grad();
        var ids = TinyModels.Tokens(9, c.VocabSize, 5).Select(i => (long)i).ToArray();
        var logits = model.Logits(tensor(ids).unsqueeze(0)).squeeze(0);
        var expected = Reference(c, model, ids);
        Assert.True(logits.allclose(expected, rtol: 1e-4, atol: 1e-4), $"max diff {(logits - expected).abs().max().item<float>()}");
    }

    [Theory, MemberData(nameof(Families))]
    public void Cached_decoding_of_a_ragged_batch_equals_full_recomputation(string family)
    {
        var c = Config(family);
        using var model = TinyModels.RandomLM(c);
        using var _ = no_grad();
        int[] promptLengths = { 3, 7, 1, 5 };
        const int steps = 6;
        var prompts = promptLengths.Select((n, i) => TinyModels.Tokens(n, c.VocabSize, 10 + i)).ToArray();
        var continuations = promptLengths.Select((_, i) => TinyModels.Tokens(steps, c.VocabSize, 50 + i)).ToArray();

        using var session = new BatchSession(model.Backbone, prompts.Length, initialCapacity: 4); // forces growth
        var cachedLogits = new List<Tensor> { model.LogitsFromHidden(session.Prefill(prompts)) };
        for (int s = 0; s < steps; s++)
        {
            var next = tensor(continuations.Select(r => (long)r[s]).ToArray());
            cachedLogits.Add(model.LogitsFromHidden(session.Step(next)));
        }

        for (int row = 0; row < prompts.Length; row++)
        {
            var full = prompts[row].Concat(continuations[row]).Select(i => (long)i).ToArray();
            var expected = model.Logits(tensor(full).unsqueeze(0)).squeeze(0);
            for (int s = 0; s <= steps; s++)
            {
                var want = expected[prompts[row].Length - 1 + s];
                var got = cachedLogits[s][row];
                float diff = (got - want).abs().max().item<float>();
                Assert.True(diff <= 1e-4f, $"row {row} step {s}: max diff {diff}");
            }
        }
    }

    [Theory, MemberData(nameof(Families))]
    public void Sibling_candidates_score_like_separate_extensions_and_commit_without_a_forward(string family)
    {
        var c = Config(family);
        using var model = TinyModels.RandomLM(c);
        using var _ = no_grad();
        var prompts = new[] { TinyModels.Tokens(4, c.VocabSize, 1), TinyModels.Tokens(2, c.VocabSize, 2) };
        var candidates = new[] { new long[] { 5, 9, 11 }, new long[] { 7, 3, 20 } };
        using var session = new BatchSession(model.Backbone, 2);
        session.Prefill(prompts);
        var hidden = session.Siblings(tensor(candidates.SelectMany(r => r).ToArray(), 2, 3));
        var logits = model.LogitsFromHidden(hidden); // [2, 3, V]
        for (int row = 0; row < 2; row++)
            for (int j = 0; j < 3; j++)
            {
                var seq = prompts[row].Select(i => (long)i).Append(candidates[row][j]).ToArray();
                var want = model.Logits(tensor(seq).unsqueeze(0))[0, -1];
                Assert.True((logits[row, j] - want).abs().max().item<float>() <= 1e-4f, $"row {row} candidate {j}");
            }

        long[] chosen = { 2, 0 };
        session.CommitSibling(chosen);
        long[] after = { 13, 17 };
        var stepLogits = model.LogitsFromHidden(session.Step(tensor(after)));
        for (int row = 0; row < 2; row++)
        {
            var seq = prompts[row].Select(i => (long)i).Append(candidates[row][chosen[row]]).Append(after[row]).ToArray();
            var want = model.Logits(tensor(seq).unsqueeze(0))[0, -1];
            Assert.True((stepLogits[row] - want).abs().max().item<float>() <= 1e-4f, $"row {row} after commit");
        }
    }

    [Fact]
    public void Selecting_rows_expands_one_prefill_into_several_samples()
    {
        var c = TinyModels.LlamaConfig();
        using var model = TinyModels.RandomLM(c);
        using var _ = no_grad();
        var prompt = TinyModels.Tokens(5, c.VocabSize, 3);
        using var session = new BatchSession(model.Backbone, 1);
        session.Prefill(new[] { prompt });
        session.SelectRows(new long[] { 0, 0, 0 });
        var logits = model.LogitsFromHidden(session.Step(tensor(new long[] { 4, 5, 6 })));
        for (int row = 0; row < 3; row++)
        {
            var seq = prompt.Select(i => (long)i).Append(4 + row).ToArray();
            var want = model.Logits(tensor(seq).unsqueeze(0))[0, -1];
            Assert.True((logits[row] - want).abs().max().item<float>() <= 1e-4f);
        }
    }

    [Fact]
    public void A_sequence_beyond_the_context_is_a_clear_error()
    {
        var c = TinyModels.LlamaConfig() with { MaxPositions = 8 };
        using var model = TinyModels.RandomLM(c);
        using var session = new BatchSession(model.Backbone, 1);
        var e = Assert.Throws<PargsException>(() => session.Prefill(new[] { TinyModels.Tokens(12, c.VocabSize, 1) }));
        Assert.Contains("context", e.Message);
    }
}
