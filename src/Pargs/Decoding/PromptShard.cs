using System.Globalization;

namespace Pargs.Decoding;

/// <summary>
/// The i-th of n deterministic slices of a prompt list (`generate --shard i/n`), so that one job can run on n machines
/// and `pargs merge` can join the outputs into the file one machine would have written.
/// <para>A slice is a run of whole batches, not every n-th prompt: each shard then decodes exactly the batches the
/// unsharded run decodes (same rows side by side, same padding), and since every row draws from its own random
/// stream keyed by its index in the whole list (<see cref="TextGenerator.Generate(Pargs.Engine.LanguageModelEngine, Pargs.Rewards.IRewardModel?, IReadOnlyList{string}, DecodingOptions, IProgress{int}?, Action{int, string}?, int, Action{IReadOnlyList{GenerationResult}}?)"/>'s
/// firstPromptIndex), its output is bit for bit the unsharded run's.</para>
/// </summary>
public readonly record struct PromptShard(int Index, int Count)
{
    /// <summary>More slices than this is a typo, not a cluster.</summary>
    public const int MaxCount = 100_000;

    /// <summary>The whole list as one slice.</summary>
    public static PromptShard Whole => new(0, 1);

    /// <summary>Parses "i/n" (0 ≤ i &lt; n): the form `--shard` takes.</summary>
    public static PromptShard Parse(string text, string option = "--shard")
    {
        var parts = text.Split('/');
        if (parts.Length != 2
            || !int.TryParse(parts[0].Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out int index)
            || !int.TryParse(parts[1].Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out int count))
            throw new PargsException($"{option} \"{text}\": expected i/n, e.g. 0/4 for the first of four slices");
        if (count < 1 || count > MaxCount) throw new PargsException($"{option} {text}: n must be between 1 and {MaxCount}");
        if (index >= count) throw new PargsException($"{option} {text}: i counts from 0 and must be below n ({count})");
        return new PromptShard(index, count);
    }

    /// <summary>
    /// The prompts [Start, Start + Length) of this slice: batches are dealt out in order, shard i taking batches
    /// ⌊i·B/n⌋ … ⌊(i+1)·B/n⌋ − 1 of the B batches of <paramref name="batchSize"/> prompts (a shard may get none when n &gt; B).
    /// </summary>
    public (int Start, int Length) Slice(int prompts, int batchSize)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(prompts);
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        long batches = (prompts + (long)batchSize - 1) / batchSize;
        long firstBatch = Index * batches / Count, endBatch = (Index + 1L) * batches / Count;
        int start = (int)Math.Min(prompts, firstBatch * batchSize);
        int end = (int)Math.Min(prompts, endBatch * batchSize);
        return (start, end - start);
    }

    public override string ToString() => $"{Index}/{Count}";
}
