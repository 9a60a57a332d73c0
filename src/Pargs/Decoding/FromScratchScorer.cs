using Pargs.Rewards;
using static TorchSharp.torch;

namespace Pargs.Decoding;

/// <summary>
/// The reference scorer of the recompute engine: every candidate gets its own cache-free forward of the
/// reward model over prompt + sequence + candidate — with another tokenizer, over the RM ids rebuilt from
/// scratch from the whole text (<see cref="RewardRetokenizer.RewardIds"/>). What the cached scorers
/// (<see cref="SharedVocabularyScorer"/>, <see cref="RetokenizingScorer"/>) must reproduce.
/// </summary>
public sealed class FromScratchScorer : ICandidateScorer
{
    readonly IRewardModel rm;
    readonly RewardRetokenizer? bridge; // null: LM ids go straight to the RM
    readonly CandidateScoringCounts counts;
    readonly List<List<long>> sequences = new();
    long[] lastCandidates = [];
    int lastK;

    public FromScratchScorer(IRewardModel rm, RewardRetokenizer? bridge, CandidateScoringCounts counts)
    {
        this.rm = rm;
        this.bridge = bridge;
        this.counts = counts;
    }

    public int Rows => sequences.Count;

    public void AddRows(IReadOnlyList<int[]> prompts) => sequences.AddRange(prompts.Select(p => p.Select(i => (long)i).ToList()));

    public void KeepRows(int[] rows)
    {
        var kept = rows.Select(r => sequences[r].ToList()).ToList();
        sequences.Clear();
        sequences.AddRange(kept);
    }

    public float[][] Score(Tensor candidates, IReadOnlyList<bool> active)
    {
        int k = (int)candidates.shape[1];
        var ids = candidates.data<long>().ToArray();
        var rewards = new float[Rows][];
        for (int b = 0; b < Rows; b++)
        {
            rewards[b] = new float[k];
            if (!active[b]) continue;
            for (int j = 0; j < k; j++)
            {
                var extended = sequences[b].Append(ids[b * k + j]).ToArray();
                using var scope = NewDisposeScope();
                var input = bridge is null ? tensor(extended).unsqueeze(0)
                    : tensor(bridge.RewardIds(extended.Select(i => (int)i).ToList()).Select(i => (long)i).ToArray()).unsqueeze(0);
                rewards[b][j] = rm.SequenceRewards(input, ones_like(input, dtype: ScalarType.Bool))[0].item<float>();
                counts.FullForwards++;
            }
        }
        lastCandidates = ids;
        lastK = k;
        return rewards;
    }

    public void Commit(int[] chosen)
    {
        for (int b = 0; b < Rows; b++) sequences[b].Add(lastCandidates[b * lastK + chosen[b]]);
    }

    public void Dispose() { }
}
