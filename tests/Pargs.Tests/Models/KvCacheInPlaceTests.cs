using Pargs.Models;
using static TorchSharp.torch;

namespace Pargs.Tests.Models;

/// <summary>
/// Rows leaving in place (<see cref="KvCache.KeepRowsInPlace"/>, what BatchSession.SelectRows does for rows kept in
/// order) against the copying <see cref="KvCache.SelectRows"/> on the same cache: the same length, validity, committed
/// counts and every committed slot's keys and values bit for bit — and the same after the cache grows and is written again.
/// </summary>
public class KvCacheInPlaceTests
{
    static readonly ModelConfig Config = TinyModels.LlamaConfig(40);

    // Four rows over 6 slots: left padding of 2, 1 and 3 slots, and a row with a hole.
    static readonly bool[][] Valid =
    [
        [false, false, true, true, true, true],
        [false, true, true, true, true, true],
        [false, false, false, true, true, true],
        [true, true, true, false, true, true],
    ];

    static KvCache Filled(KvCacheType type)
    {
        var cache = new KvCache(Config, Valid.Length, 4, type);
        cache.Reserve(6);
        var generator = new Generator(11);
        for (int layer = 0; layer < Config.NumLayers; layer++)
            cache.Write(layer, randn([Valid.Length, Config.NumKvHeads, 6, Config.HeadDim], generator: generator), randn([Valid.Length, Config.NumKvHeads, 6, Config.HeadDim], generator: generator));
        cache.Advance(Valid.SelectMany(v => v).ToArray(), 6);
        return cache;
    }

    /// <summary>Writes one more slot per row (seeded values; grows the cache when full), commits it, and returns every committed slot of every layer.</summary>
    static List<Tensor> WriteAndRead(KvCache cache, int seed)
    {
        var generator = new Generator((ulong)seed);
        cache.Reserve(1);
        var all = new List<Tensor>();
        for (int layer = 0; layer < Config.NumLayers; layer++)
        {
            var (keys, values) = cache.Write(layer, randn([cache.BatchSize, Config.NumKvHeads, 1, Config.HeadDim], generator: generator),
                                             randn([cache.BatchSize, Config.NumKvHeads, 1, Config.HeadDim], generator: generator));
            all.Add(keys.to(ScalarType.Float32).clone());
            all.Add(values.to(ScalarType.Float32).clone());
        }
        cache.Advance(Enumerable.Repeat(true, cache.BatchSize).ToArray(), 1);
        return all;
    }

    [Fact]
    public void Keeping_no_rows_declines_so_the_copied_selection_frees_the_storage()
    {
        // Zero-row views would keep every layer's whole buffers alive while a drained session idles.
        using var cache = Filled(KvCacheType.F32);
        Assert.False(cache.KeepRowsInPlace([]));
        Assert.Equal(4, cache.BatchSize); // unchanged
    }

    [Theory]
    [InlineData(KvCacheType.F32, new long[] { 0, 1, 2, 3 })]
    [InlineData(KvCacheType.F32, new long[] { 1, 2 })]  // the kept rows' first real slot is 1: one leading slot dropped
    [InlineData(KvCacheType.F32, new long[] { 2 })]     // three dropped, row moves from 2 to 0
    [InlineData(KvCacheType.F32, new long[] { 0, 2 })]
    [InlineData(KvCacheType.F32, new long[] { 2, 3 })]  // row 3 has no padding: nothing dropped
    [InlineData(KvCacheType.F16, new long[] { 0, 2 })]
    [InlineData(KvCacheType.F16, new long[] { 1, 2 })]
    [InlineData(KvCacheType.F32, new long[] { 3, 1, 2 })] // row 0 left, the last row took its place (a continuous batch's swap-remove)
    [InlineData(KvCacheType.F32, new long[] { 0, 3 })]    // rows 1 and 2 left, the last row took row 1's place
    [InlineData(KvCacheType.F16, new long[] { 3, 2 })]
    public void Rows_kept_in_place_equal_the_copied_selection(KvCacheType type, long[] rows)
    {
        using var copied = Filled(type);
        using var inPlace = Filled(type);
        using var selected = copied.SelectRows(rows);
        Assert.True(inPlace.KeepRowsInPlace(rows));
        Assert.Equal(selected.BatchSize, inPlace.BatchSize);
        Assert.Equal(selected.Length, inPlace.Length);
        Assert.Equal(selected.Capacity, inPlace.Capacity);
        Assert.Equal(selected.CommittedTokens, inPlace.CommittedTokens);
        Assert.Equal(selected.ValidPrefix.data<bool>().ToArray(), inPlace.ValidPrefix.data<bool>().ToArray());
        // Twice: the second write fills the capacity (4 → 6 + 1 slots, then a growth by doubling past the views).
        for (int round = 0; round < 3; round++)
        {
            var expected = WriteAndRead(selected, 30 + round);
            var actual = WriteAndRead(inPlace, 30 + round);
            for (int t = 0; t < expected.Count; t++)
                Assert.True(expected[t].shape.SequenceEqual(actual[t].shape) && expected[t].eq(actual[t]).all().item<bool>(), $"round {round}, tensor {t}");
        }
    }

    /// <summary>Rows of 3 committed slots (one with a padding slot), the shape of prompts prefilled for joining.</summary>
    static KvCache Joining(KvCacheType type, int rows)
    {
        var cache = new KvCache(Config, rows, 8, type);
        cache.Reserve(3);
        var generator = new Generator(12);
        for (int layer = 0; layer < Config.NumLayers; layer++)
            cache.Write(layer, randn([rows, Config.NumKvHeads, 3, Config.HeadDim], generator: generator), randn([rows, Config.NumKvHeads, 3, Config.HeadDim], generator: generator));
        cache.Advance(Enumerable.Range(0, rows * 3).Select(i => i != 0).ToArray(), 3);
        return cache;
    }

    [Theory]
    [InlineData(KvCacheType.F32, new long[] { 0, 2 }, 2)]  // two rows left, two join into their storage
    [InlineData(KvCacheType.F32, new long[] { 1, 2, 3 }, 1)]
    [InlineData(KvCacheType.F16, new long[] { 1 }, 3)]
    public void Rows_joining_in_place_equal_the_concatenation(KvCacheType type, long[] kept, int joiningRows)
    {
        using var copied = Filled(type);
        using var inPlace = Filled(type);
        using var joining = Joining(type, joiningRows);
        using var selected = copied.SelectRows(kept);
        Assert.True(inPlace.KeepRowsInPlace(kept));
        using var concatenated = KvCache.Concat(selected, joining);
        Assert.True(inPlace.AppendRowsInPlace(joining));
        Assert.Equal(concatenated.BatchSize, inPlace.BatchSize);
        Assert.Equal(concatenated.Length, inPlace.Length);
        Assert.Equal(concatenated.CommittedTokens, inPlace.CommittedTokens);
        Assert.Equal(concatenated.ValidPrefix.data<bool>().ToArray(), inPlace.ValidPrefix.data<bool>().ToArray());
        for (int round = 0; round < 3; round++) // the joined slots (padding zero in both) and the slots written after, through a growth
        {
            var expected = WriteAndRead(concatenated, 40 + round);
            var actual = WriteAndRead(inPlace, 40 + round);
            for (int t = 0; t < expected.Count; t++)
                Assert.True(expected[t].shape.SequenceEqual(actual[t].shape) && expected[t].eq(actual[t]).all().item<bool>(), $"round {round}, tensor {t}");
        }
    }

    [Fact]
    public void Rows_join_by_copy_when_the_storage_is_full_or_a_prompt_is_longer()
    {
        using var cache = Filled(KvCacheType.F32);
        using var one = Joining(KvCacheType.F32, 1);
        Assert.False(cache.AppendRowsInPlace(one)); // no row left: no spare storage
        Assert.True(cache.KeepRowsInPlace([0, 1, 3]));
        using var two = Joining(KvCacheType.F32, 2);
        Assert.False(cache.AppendRowsInPlace(two)); // one spare row for two
        Assert.True(cache.AppendRowsInPlace(one));
        Assert.Equal(4, cache.BatchSize);
        using var grown = Filled(KvCacheType.F32);
        Assert.True(grown.KeepRowsInPlace([3]));    // row 3 has no padding: Length stays 6
        grown.Reserve(grown.Capacity + 1);          // reallocated buffers: no longer views of the old storage
        Assert.False(grown.AppendRowsInPlace(one));
    }

    [Theory]
    [InlineData(new long[] { 1, 2 }, 1)]    // one dead leading slot of 10 (under an eighth): kept, no row moves its slots
    [InlineData(new long[] { 2 }, 0)]       // three of 10: dropped, as the copy drops them
    [InlineData(new long[] { 3, 1, 2 }, 0)] // none to drop
    public void Dropping_lazily_keeps_a_few_dead_leading_slots_and_the_same_committed_slots(long[] rows, int keptDeadSlots)
    {
        using var copied = Filled(KvCacheType.F32);
        using var inPlace = Filled(KvCacheType.F32);
        foreach (var cache in new[] { copied, inPlace })
        {
            cache.Reserve(40); // far from full: only the eighth of Length decides
            for (int seed = 0; seed < 4; seed++) WriteAndRead(cache, 60 + seed); // Length 10
        }
        using var selected = copied.SelectRows(rows);
        Assert.True(inPlace.KeepRowsInPlace(rows, dropLazily: true));
        Assert.Equal(selected.Length + keptDeadSlots, inPlace.Length);
        Assert.Equal(selected.CommittedTokens, inPlace.CommittedTokens);
        var inPlaceValid = inPlace.ValidPrefix.data<bool>().ToArray();
        var selectedValid = selected.ValidPrefix.data<bool>().ToArray();
        for (int r = 0; r < rows.Length; r++)
            for (int s = 0; s < inPlace.Length; s++)
                Assert.Equal(s >= keptDeadSlots && selectedValid[r * selected.Length + s - keptDeadSlots], inPlaceValid[r * inPlace.Length + s]);
        var expected = WriteAndRead(selected, 50);
        var actual = WriteAndRead(inPlace, 50);
        for (int t = 0; t < expected.Count; t++) // the committed slots, after the kept dead ones
            Assert.True(expected[t].eq(actual[t].narrow(2, keptDeadSlots, expected[t].shape[2])).all().item<bool>(), $"tensor {t}");
    }

    [Fact]
    public void Rows_out_of_order_or_repeated_are_left_to_the_copy()
    {
        using var cache = Filled(KvCacheType.F32);
        Assert.False(cache.KeepRowsInPlace([1, 0]));
        Assert.False(cache.KeepRowsInPlace([0, 0, 1]));
        Assert.False(cache.KeepRowsInPlace([4]));
        Assert.Equal(4, cache.BatchSize);
        Assert.Equal(6, cache.Length);
    }
}
