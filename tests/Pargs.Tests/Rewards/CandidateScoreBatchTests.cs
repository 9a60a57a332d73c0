using Pargs.Checkpoints;
using Pargs.Decoding;
using Pargs.Models.Cpu;
using Pargs.Rewards;
using static TorchSharp.torch;

namespace Pargs.Tests.Rewards;

/// <summary>
/// PARGS scores its k candidates with one reward-model pass of k rows; on a Q8_0 reward model those rows' products
/// run in <see cref="Pargs.Weights.EightRowBatch"/> (2–15 rows). A candidate's score must be the same bits whatever k
/// is and wherever the candidate sits among its siblings, or PARGS's choice would depend on k through rounding. The
/// reward model's hidden states are held to that (bit for bit); the float32 score head after them is not this kernel's
/// and is held to 1e-6 (CpuOps.MatMul's row tiles may round k rows' last bit differently).
/// </summary>
public class CandidateScoreBatchTests : IDisposable
{
    readonly TempDir dir = new();
    public void Dispose() => dir.Dispose();

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void A_candidates_score_on_a_q8_0_reward_model_does_not_change_with_k(int threads)
    {
        // The seeded reference llama (widths of whole 32-value blocks) as a reward model, converted to a Q8_0 GGUF.
        string lm = dir.File("llama");
        ReferenceCheckpoints.Write("llama", lm);
        string folder = dir.File("rm");
        using (var contents = CheckpointLoader.Load(lm))
        using (var seeded = RewardModel.FromCausalLM(contents, seed: 5))
        {
            seeded.Tokenizer = Pargs.Tokenizers.TokenizerLoader.ForCheckpoint(contents, null);
            seeded.Save(folder, RewardObjective.Full, StoredType.F32);
        }
        string gguf = dir.File("rm-q8_0.gguf");
        GgufConverter.Convert(folder, gguf, GgufOutputType.Q8_0);
        using var rm = RewardModel.LoadForInference(gguf);
        Assert.Equal(Pargs.Weights.WeightFormat.Q8_0, rm.StoredWeights!.FormatOf("model.layers.0.mlp.up_proj.weight"));

        using var threadCount = CpuThreads.Scoped(threads);
        int vocab = (int)rm.Config.VocabSize, width = (int)rm.Config.HiddenSize;
        long[] all = Enumerable.Range(0, 20).Select(i => (long)((i * 37 + 11) % vocab)).ToArray();
        var hidden = new Dictionary<int, float[]>();
        var scores = new Dictionary<int, float[]>();
        foreach (int k in new[] { 20, 15, 10, 3, 2, 1 })
        {
            // Reversed: each candidate sits at another position than among 20 (20 rows: the GEMM; 2–15: EightRowBatch).
            var candidates = all.Take(k).Reverse().ToArray();
            hidden[k] = Hidden(rm, candidates);
            scores[k] = Scores(rm, candidates).Reverse().ToArray();
        }
        foreach (int k in new[] { 15, 10, 3, 2 })
            for (int j = 0; j < k; j++)
            {
                int position = k - 1 - j;
                for (int e = 0; e < width; e++)
                    Assert.True(hidden[k][position * width + e] == hidden[20][(19 - j) * width + e],
                        $"{threads} thread(s): candidate {all[j]} among {k}, hidden {e}: {hidden[k][position * width + e]:R}; among 20 {hidden[20][(19 - j) * width + e]:R}");
                // The float32 score head (CpuLinear → CpuOps.MatMul over k rows) may round the last bit differently.
                Assert.True(Math.Abs(scores[k][j] - scores[20][j]) <= 1e-6f * Math.Max(1f, Math.Abs(scores[20][j])), $"candidate {all[j]}: {scores[k][j]:R} among {k}, {scores[20][j]:R} among 20");
            }
        // Alone (one row: the one-row kernel, another float summation order) it agrees to rounding.
        for (int e = 0; e < width; e++)
            Assert.True(Math.Abs(hidden[1][e] - hidden[20][19 * width + e]) <= 1e-4f * Math.Max(1f, Math.Abs(hidden[20][19 * width + e])),
                $"alone, hidden {e}: {hidden[1][e]:R}; among 20 {hidden[20][19 * width + e]:R}");
    }

    static float[] Hidden(RewardModel rm, long[] candidates)
    {
        using var session = new Pargs.Models.BatchSession(rm.Backbone, 0, 32);
        session.AddRows([new[] { 1, 403 % (int)rm.Config.VocabSize, 13, 70, 7 }], 32);
        using var ids = tensor(candidates, 1, candidates.Length);
        using var hidden = session.Siblings(ids);
        return hidden.contiguous().data<float>().ToArray();
    }

    static float[] Scores(RewardModel rm, long[] candidates)
    {
        using var scorer = new SharedVocabularyScorer(rm, 32, new CandidateScoringCounts());
        scorer.AddRows([new[] { 1, 403 % (int)rm.Config.VocabSize, 13, 70, 7 }]);
        using var ids = tensor(candidates, 1, candidates.Length);
        return scorer.Score(ids, [true])[0];
    }
}
