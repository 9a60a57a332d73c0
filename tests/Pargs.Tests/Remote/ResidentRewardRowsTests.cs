using Pargs.Models;
using Pargs.Rewards;
using Pargs.Server;
using static TorchSharp.torch;

namespace Pargs.Tests.Remote;

/// <summary>
/// pargs serve keeps each steering client row's reward-model cache between its /v1/rewards requests
/// (<see cref="ResidentRewardRows"/>): the next request's prefix — the last one plus the chosen candidate — commits that
/// candidate where the last sibling forward wrote it and scores over the row in place. Every reward equals whole-sequence
/// scoring, whatever each row does: continue with a candidate (kept row), switch to a token it was not offered (the row
/// starts afresh), send the same request twice in one pass (the second builds its own row), or find its row dropped
/// because the budget cannot hold one.
/// </summary>
public sealed class ResidentRewardRowsTests
{
    const int K = 5;

    [Theory]
    [InlineData(256L << 20, true)]
    [InlineData(4L << 10, false)] // a budget smaller than any row: nothing is kept, every request starts afresh
    public async Task Every_reward_equals_whole_sequence_scoring_as_rows_continue_switch_and_repeat(long prefixCacheBytes, bool keeps)
    {
        using var models = new ServedModels().AddRewardModel("rm", RewardModel.Load(TestPaths.ShippedPartialRm));
        var rm = (RewardModel)models.RewardModel("rm", "model").Model;
        using var backend = new BatchingGenerationBackend(models, new ServerLimits { MaxTokens = 256, MaxN = 1, MaxSequencesPerRequest = 64, PrefixCacheBytes = prefixCacheBytes });
        var tokenizer = rm.Tokenizer!;
        var prefixes = new[] { "Tim was sad because his dog ran away.", "Lily saw a big", "Once upon a time there was a little cat who liked to" }
            .Select(p => tokenizer.Encode(p, addBos: true)).ToArray();
        var random = new Random(3);
        for (int step = 0; step < 4; step++)
        {
            var candidates = prefixes.Select(_ => Enumerable.Range(0, K).Select(_ => random.Next(3, 512)).Distinct().ToArray()).ToArray();
            RewardInput[] Inputs(int row) => candidates[row].Select(c => new RewardInput("", Ids: [.. prefixes[row], c], PrefixLength: prefixes[row].Length)).ToArray();
            // Every row at once (one pass, as a client's rows arrive together), and row 0's request twice.
            var requests = new[] { 0, 1, 2, 0 }.Select(row => (row, task: backend.ScoreAsync("rm", Inputs(row), default))).ToArray();
            foreach (var (row, task) in requests)
            {
                var rewards = await task.WaitAsync(TimeSpan.FromMinutes(2));
                using (no_grad())
                    for (int j = 0; j < candidates[row].Length; j++)
                    {
                        var sequence = tensor(Inputs(row)[j].Ids!.Select(t => (long)t).ToArray()).unsqueeze(0);
                        float expected = rm.SequenceRewards(sequence, ones_like(sequence, dtype: ScalarType.Bool)).item<float>();
                        Assert.True(Math.Abs(expected - rewards[j]) <= 1e-4f, $"step {step}, row {row}, candidate {j}: {rewards[j]} vs whole-sequence {expected}");
                    }
            }
            // Rows 0 and 1 continue with an offered candidate; row 2 switches at step 1 to a token it was not offered.
            for (int row = 0; row < prefixes.Length; row++)
            {
                int next = row == 2 && step == 1 ? Enumerable.Range(3, 500).First(t => !candidates[row].Contains(t)) : candidates[row][random.Next(candidates[row].Length)];
                prefixes[row] = [.. prefixes[row], next];
            }
        }
        double committed = backend.Metrics.Where(m => m.Name == "pargs_reward_resident_rows_committed_total").Sum(m => m.Value);
        // Steps 1–3 of rows 0 and 1 and steps 1 and 3 of row 2 continue a kept row — unless the budget keeps none.
        if (keeps) Assert.InRange(committed, 8, 8 + 3); // a repeated request may find the row its twin left (≤ one a step)
        else Assert.Equal(0, committed);
    }
}
