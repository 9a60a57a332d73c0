using Pargs.Models;
using Pargs.Rewards;
using Pargs.Server;
using static TorchSharp.torch;

namespace Pargs.Tests.Remote;

/// <summary>
/// pargs serve's reward worker: /v1/rewards passes of a causal reward model run on their own thread, so a remote steering
/// client's reward requests are scored while the generation worker is busy — here with a Best-of-N search, which the
/// generation worker runs to its end as one job (using the same reward model at its end). Without the reward worker the
/// reward request waits behind that job. The order is what is asserted (a search of thousands of tokens against one
/// reward pass), not a time.
/// </summary>
public sealed class RewardWorkerTests
{
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_reward_request_is_scored_while_the_generation_worker_runs_a_search(bool rewardWorker)
    {
        using var models = new ServedModels()
            .AddRewardModel("rm", RewardModel.Load(TestPaths.ShippedPartialRm))
            .AddLanguageModel("lm", CausalLM.Load(TestPaths.Stories260KGguf));
        var rm = (RewardModel)models.RewardModel("rm", "model").Model;
        using var backend = new BatchingGenerationBackend(models, new ServerLimits { MaxTokens = 256, MaxN = 1, MaxSequencesPerRequest = 64 }, ownRewardWorker: rewardWorker);

        // A search the generation worker runs as one job: 16 samples of up to 128 tokens, then their rewards.
        var search = backend.GenerateAsync(new GenerationRequest { Model = "lm", Prompt = "Once upon a time", Method = "best-of-n", BestOf = 16, MaxTokens = 128, Seed = 4 }, default)
            .GetAsyncEnumerator();
        var searchDone = Drain(search); // its job is queued before this returns (the iterator's synchronous start)

        var ids = rm.Tokenizer!.Encode("Tim was sad because his dog ran away.", addBos: true);
        // Two texts over a shared prefix: the prefix-cached pass (what a steering client's k candidates take).
        var inputs = new[] { new RewardInput("", Ids: ids), new RewardInput("", Ids: [.. ids[..^1], 42]) };
        var rewards = await backend.ScoreAsync("rm", inputs, default).WaitAsync(TimeSpan.FromMinutes(2));
        bool searchStillRunning = !searchDone.IsCompleted;
        await searchDone.WaitAsync(TimeSpan.FromMinutes(2));

        // With the reward worker the search (seconds of work) is still running when the reward comes back. Without it the
        // reward pass waits for the search's job, but the search's enumeration ends a few thread-pool hops after that job
        // (measured: it can end after the reward's continuation runs on a loaded machine), so that order is not asserted.
        if (rewardWorker) Assert.True(searchStillRunning, "the reward request waited for the generation worker's search");
        // The rewards are the reward model's own, whichever thread scored them.
        using (no_grad())
            for (int i = 0; i < inputs.Length; i++)
            {
                var sequence = tensor(inputs[i].Ids!.Select(t => (long)t).ToArray()).unsqueeze(0);
                Assert.Equal(rm.SequenceRewards(sequence, ones_like(sequence, dtype: ScalarType.Bool)).item<float>(), rewards[i], 1e-4f);
            }
    }

    static async Task Drain(IAsyncEnumerator<GenerationUpdate> updates)
    {
        await using (updates)
            while (await updates.MoveNextAsync()) { }
    }
}
