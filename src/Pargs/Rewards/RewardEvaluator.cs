using Pargs.Models;
using Pargs.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace Pargs.Rewards;

/// <summary>Accuracy of one group of prefix comparisons.</summary>
public sealed record BucketAccuracy(string Bucket, int Comparisons, double Accuracy);

/// <summary>
/// How well a reward model ranks held-out pairs: on whole responses (<see cref="Accuracy"/>, the usual RM accuracy,
/// with <see cref="MeanMargin"/> = mean r_w − r_l) and on every prefix i = 1..L, grouped by prefix length and by
/// fraction of the response — the PARGS paper's central measurement (a full-sequence RM ranks short prefixes
/// poorly; a partial one does not). Ties (e.g. identical prefixes) count as half right.
/// </summary>
public sealed record RewardEvaluation(
    int Pairs,
    double Accuracy,
    double MeanMargin,
    double MeanReward,
    IReadOnlyList<BucketAccuracy> ByPrefixLength,
    IReadOnlyList<BucketAccuracy> ByPrefixFraction)
{
    /// <summary>Flat metrics for the training log: accuracy, margin, mean_reward, accuracy_by_prefix/&lt;bucket&gt;.</summary>
    public Dictionary<string, double> ToMetrics()
    {
        var metrics = new Dictionary<string, double> { ["accuracy"] = Accuracy, ["margin"] = MeanMargin, ["mean_reward"] = MeanReward };
        foreach (var b in ByPrefixLength.Where(b => b.Comparisons > 0)) metrics[$"accuracy_by_prefix/{b.Bucket}"] = b.Accuracy;
        foreach (var b in ByPrefixFraction.Where(b => b.Comparisons > 0)) metrics[$"accuracy_by_prefix/{b.Bucket}"] = b.Accuracy;
        return metrics;
    }
}

public static class RewardEvaluator
{
    public static RewardEvaluation Evaluate(RewardModel model, IReadOnlyList<TokenizedPair> pairs, int batchSize = 16)
    {
        if (pairs.Count == 0) throw new PargsException("there are no evaluation pairs");
        var lengthScore = new double[PrefixBuckets.LengthLabels.Count];
        var lengthCount = new int[lengthScore.Length];
        var fractionScore = new double[PrefixBuckets.FractionLabels.Count];
        var fractionCount = new int[fractionScore.Length];
        double fullScore = 0, marginSum = 0, rewardSum = 0;
        bool wasTraining = model.training;
        model.eval();
        using (no_grad())
        {
            // Similar lengths together: less padding. The order does not change any result.
            foreach (var batch in pairs.OrderBy(p => p.SequenceLength).Chunk(batchSize))
            {
                using var scope = NewDisposeScope();
                var prefixBatch = RewardPairBatch.Build(batch, pair => Enumerable.Range(1, pair.ResponseLength));
                var (chosen, rejected) = prefixBatch.Rewards(model);
                var w = chosen.to(ScalarType.Float64).data<double>().ToArray();
                var l = rejected.to(ScalarType.Float64).data<double>().ToArray();
                var prefix = prefixBatch.PrefixLengths.data<long>().ToArray();
                var length = prefixBatch.ResponseLengths.data<long>().ToArray();
                for (int n = 0; n < w.Length; n++)
                {
                    double right = w[n] > l[n] ? 1.0 : w[n] == l[n] ? 0.5 : 0.0;
                    int i = (int)prefix[n], total = (int)length[n];
                    int lb = PrefixBuckets.LengthBucket(i), fb = PrefixBuckets.FractionBucket(i, total);
                    lengthScore[lb] += right; lengthCount[lb]++;
                    fractionScore[fb] += right; fractionCount[fb]++;
                    if (i == total)
                    {
                        fullScore += right;
                        marginSum += w[n] - l[n];
                        rewardSum += (w[n] + l[n]) / 2;
                    }
                }
            }
        }
        if (wasTraining) model.train();
        static IReadOnlyList<BucketAccuracy> Buckets(IReadOnlyList<string> labels, double[] score, int[] count)
            => labels.Select((label, b) => new BucketAccuracy(label, count[b], count[b] == 0 ? double.NaN : score[b] / count[b])).ToList();
        return new RewardEvaluation(pairs.Count, fullScore / pairs.Count, marginSum / pairs.Count, rewardSum / pairs.Count,
            Buckets(PrefixBuckets.LengthLabels, lengthScore, lengthCount), Buckets(PrefixBuckets.FractionLabels, fractionScore, fractionCount));
    }

    /// <summary>Accuracy over an arbitrary set of prefix lengths (e.g. i = 2..4), ties as half.</summary>
    public static double PrefixAccuracy(RewardModel model, IReadOnlyList<TokenizedPair> pairs, Func<TokenizedPair, IEnumerable<int>> prefixes, int batchSize = 16)
    {
        double score = 0;
        int count = 0;
        using (no_grad())
            foreach (var batch in pairs.Chunk(batchSize))
            {
                using var scope = NewDisposeScope();
                var (chosen, rejected) = RewardPairBatch.Build(batch, prefixes).Rewards(model);
                score += (chosen > rejected).to(ScalarType.Float64).Plus(chosen.eq(rejected).to(ScalarType.Float64).Times(0.5)).sum().item<double>();
                count += (int)chosen.shape[0];
            }
        return score / count;
    }
}
