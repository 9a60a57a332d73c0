namespace Pargs.Tokenizers;

/// <summary>
/// Rank-ordered BPE merges as Hugging Face's BPE model applies them: repeatedly merge the adjacent pair with
/// the lowest rank (leftmost among equal ranks) until no listed pair remains.
/// </summary>
internal sealed class BpeMerges
{
    readonly Dictionary<long, (int Rank, int Merged)> _pairs = new();
    readonly List<(int Left, int Right)> _inRankOrder = new();

    public int Count => _pairs.Count;
    public IReadOnlyList<(int Left, int Right)> InRankOrder => _inRankOrder;

    static long Key(int left, int right) => ((long)left << 32) | (uint)right;

    /// <summary>Adds a merge; a pair already listed keeps its first (lower) rank, as HF does.</summary>
    public void Add(int left, int right, int merged)
    {
        if (_pairs.TryAdd(Key(left, right), (_pairs.Count, merged))) _inRankOrder.Add((left, right));
    }

    public void Apply(List<int> symbols)
    {
        while (symbols.Count > 1)
        {
            int bestRank = int.MaxValue, bestAt = -1, bestId = -1;
            for (int i = 0; i + 1 < symbols.Count; i++)
            {
                if (_pairs.TryGetValue(Key(symbols[i], symbols[i + 1]), out var m) && m.Rank < bestRank)
                {
                    (bestRank, bestAt, bestId) = (m.Rank, i, m.Merged);
                }
            }
            if (bestAt < 0) return;
            symbols[bestAt] = bestId;
            symbols.RemoveAt(bestAt + 1);
        }
    }
}
