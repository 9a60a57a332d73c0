using Pargs.Models;
using Pargs.Rewards;
using Pargs.Server;
using static TorchSharp.torch;

namespace Pargs.Tests.Remote;

/// <summary>
/// pargs serve's reward worker: /v1/rewards passes of a causal reward model run on their own thread, so a remote steering
/// client's reward requests are scored while the generation worker is busy. The generation worker is held by a job that
/// waits for the test's word (<see cref="BatchingGenerationBackend.HoldGenerationWorker"/>), so "busy" is certain rather
/// than timed: with the reward worker the reward comes back while it is held; without it the reward waits until it is let go.
/// </summary>
public sealed class RewardWorkerTests
{
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_reward_request_is_scored_while_the_generation_worker_is_busy(bool rewardWorker)
    {
        using var models = new ServedModels()
            .AddRewardModel("rm", RewardModel.Load(TestPaths.ShippedPartialRm))
            .AddLanguageModel("lm", CausalLM.Load(TestPaths.Stories260KGguf));
        var rm = (RewardModel)models.RewardModel("rm", "model").Model;
        using var backend = new BatchingGenerationBackend(models, new ServerLimits { MaxTokens = 256, MaxN = 1, MaxSequencesPerRequest = 64 }, ownRewardWorker: rewardWorker);

        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        float[] rewards;
        RewardInput[] inputs;
        try
        {
            await backend.HoldGenerationWorker(release.Task).WaitAsync(TimeSpan.FromMinutes(2)); // the worker is now busy

            var ids = rm.Tokenizer!.Encode("Tim was sad because his dog ran away.", addBos: true);
            // Two texts over a shared prefix: the prefix-cached pass (what a steering client's k candidates take).
            inputs = [new RewardInput("", Ids: ids), new RewardInput("", Ids: [.. ids[..^1], 42])];
            var scoring = backend.ScoreAsync("rm", inputs, default);
            if (rewardWorker)
                rewards = await scoring.WaitAsync(TimeSpan.FromMinutes(2)); // a timeout here: it waited for the held worker
            else
            {
                // Queued behind the held job on the one worker: it cannot have run yet.
                await Task.Delay(200);
                Assert.False(scoring.IsCompleted, "the reward was scored while the only worker was held");
                release.SetResult();
                rewards = await scoring.WaitAsync(TimeSpan.FromMinutes(2));
            }
        }
        finally { release.TrySetResult(); }

        // The rewards are the reward model's own, whichever thread scored them.
        using (no_grad())
            for (int i = 0; i < inputs.Length; i++)
            {
                var sequence = tensor(inputs[i].Ids!.Select(t => (long)t).ToArray()).unsqueeze(0);
                Assert.Equal(rm.SequenceRewards(sequence, ones_like(sequence, dtype: ScalarType.Bool)).item<float>(), rewards[i], 1e-4f);
            }
    }
}
