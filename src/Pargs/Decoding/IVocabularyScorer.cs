using static TorchSharp.torch;

namespace Pargs.Decoding;

/// <summary>
/// The reward step of a reward model whose head scores the whole vocabulary (<see cref="Rewards.VocabularyRewardModel"/>:
/// FaRMA, GenARM): ONE reward-model token per row and step, whatever k is. <see cref="Values"/> holds every row's
/// head at its current prefix; <see cref="Append"/> extends each row by its chosen token (one cached step).
/// As an <see cref="ICandidateScorer"/> it also answers candidate scores (r(x, y&lt;t ∘ v) = Values[b, v]), so the
/// tokenwise rules of ARGS/PARGS run on it unchanged.
/// </summary>
public interface IVocabularyScorer : ICandidateScorer
{
    /// <summary>The head's values [B, V] at every row's current prefix (FaRMA: rewards; GenARM: log π_r).</summary>
    Tensor Values { get; }

    /// <summary>Extends every row by its token (one per row, in row order).</summary>
    void Append(long[] tokens);
}

/// <summary>The candidate-scorer half of a vocabulary scorer: candidates read from <see cref="IVocabularyScorer.Values"/>.</summary>
public abstract class VocabularyScorerBase : IVocabularyScorer
{
    long[] lastCandidates = [];
    int lastK;

    public abstract int Rows { get; }
    public abstract Tensor Values { get; }
    public abstract void AddRows(IReadOnlyList<int[]> prompts);
    public abstract void KeepRows(int[] rows);
    public abstract void Append(long[] tokens);
    public abstract void Dispose();

    public float[][] Score(Tensor candidates, IReadOnlyList<bool> active)
    {
        using var scope = NewDisposeScope();
        lastK = (int)candidates.shape[1];
        lastCandidates = candidates.data<long>().ToArray();
        return DecodingSteps.ToRows(Values.gather(1, candidates));
    }

    public void Commit(int[] chosen) => Append(chosen.Select((j, b) => lastCandidates[b * lastK + j]).ToArray());
}
