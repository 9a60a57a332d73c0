using System.Diagnostics;
using Pargs.Data;
using Pargs.Models;
using Pargs.Rewards;
using Pargs.Training;
using static TorchSharp.torch;

namespace Pargs.Benchmarks;

/// <summary>Settings of <see cref="TrainRmBenchmark"/>.</summary>
public sealed record TrainRmBenchmarkOptions
{
    public int Threads { get; init; } = 1;
    public IReadOnlyList<int> ResponseLengths { get; init; } = new[] { 32, 64, 128 };
    public int PromptLength { get; init; } = 16;
    public int PairsPerBatch { get; init; } = 4;
    public int Repeats { get; init; } = 3;
    public string Stories260KPath { get; init; } = BenchmarkModels.Stories260KPath;
}

/// <summary>
/// Partial reward-model training throughput (pairs/s, forward + backward of the Bradley–Terry loss over every
/// prefix): one causal forward per pair side, as <see cref="RewardTrainer"/> trains, against materializing
/// each of the L prefix pairs as its own sequence (what a prefix-by-prefix implementation does).
/// Same model (stories260K + score head), same pairs, same loss.
/// </summary>
public static class TrainRmBenchmark
{
    public static BenchTable Run(TrainRmBenchmarkOptions options, Action<string>? log = null)
    {
        BenchChecks.AtLeastOne(options.ResponseLengths, "--lengths");
        BenchChecks.Threads([options.Threads]);
        Models.Cpu.ComputeThreads.Set(options.Threads);
        using var contents = Checkpoints.CheckpointLoader.Load(options.Stories260KPath);
        foreach (int length in options.ResponseLengths)
            if (options.PromptLength + length > contents.Config.MaxPositions)
                throw new PargsException($"--lengths {length}: prompt {options.PromptLength} + response {length} tokens exceeds the model's context ({contents.Config.MaxPositions})");
        using var model = RewardModel.FromCausalLM(contents, seed: 1);
        model.train();
        var table = new BenchTable($"bench train-rm: partial BT training pairs/s (batch {options.PairsPerBatch} pairs, prompt {options.PromptLength}, threads {options.Threads})",
            "response length L", "one forward (pairs/s)", "materialized prefixes (pairs/s)", "speed-up (target ≥ 10 at L = 64)");
        foreach (int length in options.ResponseLengths)
        {
            var pairs = Enumerable.Range(0, options.PairsPerBatch).Select(i => SyntheticPair(options.PromptLength, length, contents.Config.VocabSize, seed: i)).ToList();
            log?.Invoke($"train-rm: L={length} one forward");
            double oneForward = PairsPerSecond(() => RewardTrainer.Loss(model, pairs, RewardObjective.Partial).Loss, pairs.Count, options.Repeats);
            log?.Invoke($"train-rm: L={length} materialized");
            double materialized = PairsPerSecond(() => MaterializedLoss(model, pairs), pairs.Count, options.Repeats);
            table.Add(length.ToString(), $"{oneForward:F1}", $"{materialized:F2}", $"{oneForward / materialized:F1}");
        }
        table.Notes.Add("Both sides compute the same loss (tests/Pargs.Tests/Rewards checks equality of loss and gradients ≤ 1e-5); each timing is forward + backward, median of the repeats.");
        return table;
    }

    /// <summary>The reference construction: every prefix pair a separate (right-padded) sequence, rewards at the last token.</summary>
    static Tensor MaterializedLoss(RewardModel model, IReadOnlyList<TokenizedPair> pairs)
    {
        var prefixes = pairs.SelectMany(p => p.MaterializePrefixes()).ToList();
        var winners = PaddedBatch.RightPadded(prefixes.Select(p => p.WinnerIds).ToList());
        var losers = PaddedBatch.RightPadded(prefixes.Select(p => p.LoserIds).ToList());
        var chosen = model.SequenceRewards(winners.Ids, winners.Valid);
        var rejected = model.SequenceRewards(losers.Ids, losers.Valid);
        return BradleyTerryLoss.Compute(chosen, rejected).Loss;
    }

    static double PairsPerSecond(Func<Tensor> loss, int pairs, int repeats)
    {
        var times = new List<double>();
        for (int r = 0; r < repeats + 1; r++) // first run is a warm-up
        {
            using var scope = NewDisposeScope();
            var clock = Stopwatch.StartNew();
            loss().backward();
            if (r > 0) times.Add(clock.Elapsed.TotalSeconds);
        }
        times.Sort();
        return pairs / times[times.Count / 2];
    }

    static TokenizedPair SyntheticPair(int promptLength, int responseLength, int vocab, int seed)
    {
        var rng = new Random(seed);
        int[] Tokens(int n) => Enumerable.Range(0, n).Select(_ => rng.Next(3, vocab)).ToArray();
        return PartialPairs.Build(Tokens(promptLength), Tokens(responseLength), Tokens(responseLength), eosId: 2);
    }
}
