using Pargs.Models;
using static TorchSharp.torch;

namespace Pargs.Rewards;

/// <summary>Whole-sequence rewards of many token sequences, in right-padded batches of bounded size.</summary>
public static class SequenceRewardBatches
{
    public static float[] Score(IRewardModel rm, IReadOnlyList<int[]> sequences, int batchSize = 16)
    {
        var all = new float[sequences.Count];
        using var _ = no_grad();
        for (int start = 0; start < sequences.Count; start += batchSize)
        {
            using var scope = NewDisposeScope();
            var part = sequences.Skip(start).Take(batchSize).ToList();
            var (ids, valid) = PaddedBatch.RightPadded(part);
            var rewards = rm.SequenceRewards(ids, valid).data<float>().ToArray();
            Array.Copy(rewards, 0, all, start, part.Count);
        }
        return all;
    }
}
