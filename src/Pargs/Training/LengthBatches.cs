namespace Pargs.Training;

/// <summary>
/// The micro-batches of one epoch, reproducible from (seed, epoch): examples are shuffled, sorted by length
/// (stable, so equal lengths stay shuffled), cut into batches of similar length — little padding waste — and
/// the batches are shuffled again so training does not run from short to long.
/// </summary>
public static class LengthBatches
{
    public static IReadOnlyList<int[]> ForEpoch(IReadOnlyList<int> lengths, int batchSize, int seed, int epoch)
    {
        var rng = new Random(unchecked(seed * 1_000_003 + epoch));
        var order = Enumerable.Range(0, lengths.Count).ToArray();
        rng.Shuffle(order);
        var sorted = order.OrderBy(i => lengths[i]).ToArray();
        var batches = sorted.Chunk(batchSize).ToArray();
        rng.Shuffle(batches);
        return batches;
    }

    public static int CountPerEpoch(int examples, int batchSize) => (examples + batchSize - 1) / batchSize;
}
