using Pargs.Models;
using Pargs.Models.Cpu;
using Pargs.Weights;
using static TorchSharp.torch;

namespace Pargs.Tests.Models;

/// <summary>
/// A long ragged prefill on stored weights: every product takes the blocked GEMMs (<see cref="IntegerGemm"/>,
/// <see cref="HalfGemm"/>: more than 16 activation rows) and attention runs in token blocks over the slots their
/// masks allow (left padding, causal). Held to the same references and tolerances as
/// <see cref="StoredPrecisionTests"/>: F16/BF16 against torch's float32 forward on the dequantized weights (1e-4),
/// integer formats against the float32 kernel with activations rounded as they quantize (3e-2, see there why).
/// </summary>
public class StoredPrefillTests
{
    public static TheoryData<string, int> Formats => new() { { "f16", 1 }, { "bf16", 2 }, { "q8_0", 2 }, { "q4_0", 1 }, { "q4_K", 1 } };

    [Theory, MemberData(nameof(Formats))]
    public void A_long_ragged_prefill_on_stored_weights_matches_float32(string formatName, int threads)
    {
        var format = StoredPrecisionTests.Parse(formatName);
        var config = StoredPrecisionTests.Config(qwen2: true);
        using var original = TinyModels.RandomLM(config, seed: 47);
        using var stored = CausalLM.FromStored(config, StoredPrecisionTests.Store(original, format), "(test)");
        bool integer = WeightCodec.ActivationFormat(format) is not null;
        using var reference = integer
            ? StoredPrecisionTests.RoundedReference(config, stored.StoredWeights!)
            : StoredPrecisionTests.Dequantized(config, 47, stored.StoredWeights!);
        Assert.True(IntegerGemm.Takes(format, 3 * 70) || HalfGemm.Takes(format, 3 * 70) || !IntegerDot.UseVnni,
            $"{formatName}: a 3 × 70-token prefill should take a blocked GEMM on this CPU");
        var expected = Prefill(reference);
        List<Tensor> actual;
        using (CpuThreads.Scoped(threads)) actual = Prefill(stored);
        float tolerance = integer ? 3e-2f : 1e-4f;
        float worst = StoredPrecisionTests.WorstRelative(actual, expected);
        Assert.True(worst <= tolerance, $"{formatName}: max relative |stored − float32| = {worst} > {tolerance}");
    }

    /// <summary>Logits of every position of a ragged 3-row prefill (70, 41, 66 tokens), then of two steps.</summary>
    static List<Tensor> Prefill(CausalLM model)
    {
        using var _ = no_grad();
        var c = model.Config;
        int[][] prompts = { TinyModels.Tokens(70, c.VocabSize, 1), TinyModels.Tokens(41, c.VocabSize, 2), TinyModels.Tokens(66, c.VocabSize, 3) };
        using var session = new BatchSession(model.Backbone, prompts.Length, initialCapacity: 80);
        int longest = prompts.Max(p => p.Length);
        var ids = new long[3 * longest];
        var valid = new bool[3 * longest];
        for (int b = 0; b < 3; b++)
            for (int t = 0; t < prompts[b].Length; t++)
            {
                ids[b * longest + longest - prompts[b].Length + t] = prompts[b][t];
                valid[b * longest + longest - prompts[b].Length + t] = true;
            }
        var hidden = session.Append(ids, valid, longest);
        // Padding positions have no defined output; compare real tokens only.
        var outputs = new List<Tensor>();
        for (int b = 0; b < 3; b++)
            outputs.Add(model.LogitsFromHidden(hidden[b].narrow(0, longest - prompts[b].Length, prompts[b].Length).unsqueeze(0)));
        for (int s = 0; s < 2; s++)
            outputs.Add(model.LogitsFromHidden(session.Step(tensor(new long[] { 3 + s, 10 + s, 20 + s }))));
        return outputs;
    }
}
