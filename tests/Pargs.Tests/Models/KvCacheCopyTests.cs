using TorchSharp;
using Pargs.Models;
using static TorchSharp.torch;

namespace Pargs.Tests.Models;

/// <summary>
/// The prefix cache's row copies (<see cref="KvCache.CompactRow"/> out of a session, <see cref="KvCache.Stack"/> into the
/// next one) against the same selection written independently here: each row gets exactly its own real slots, in order,
/// right-aligned, padding zero — so a row never reads another row's (or a diverged prefix's) keys/values.
/// </summary>
public class KvCacheCopyTests
{
    static readonly ModelConfig Config = TinyModels.LlamaConfig(40);

    // Three rows over 6 slots: full; left-padded (a shorter prompt); a hole (a slot that is not the row's token).
    static readonly bool[][] Valid =
    [
        [true, true, true, true, true, true],
        [false, false, true, true, true, true],
        [true, true, true, false, true, true],
    ];

    /// <summary>All committed keys and values of a layer, float32 [B, kvHeads, Length, D] (writes one uncommitted zero slot to read them).</summary>
    static (Tensor Keys, Tensor Values) Read(KvCache cache, int layer)
    {
        cache.Reserve(1);
        using var zero = zeros(cache.BatchSize, Config.NumKvHeads, 1, Config.HeadDim);
        var (keys, values) = cache.Write(layer, zero, zero);
        return (keys.narrow(2, 0, cache.Length).to(ScalarType.Float32).clone(), values.narrow(2, 0, cache.Length).to(ScalarType.Float32).clone());
    }

    /// <summary>Same shape and bit-equal values (float32 holds a float16 cache's values exactly).</summary>
    static bool Same(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>();

    static KvCache Filled(KvCacheType type)
    {
        var cache = new KvCache(Config, Valid.Length, 4, type);
        cache.Reserve(6);
        var generator = new TorchSharp.torch.Generator(7);
        for (int layer = 0; layer < Config.NumLayers; layer++)
            cache.Write(layer, randn([Valid.Length, Config.NumKvHeads, 6, Config.HeadDim], generator: generator), randn([Valid.Length, Config.NumKvHeads, 6, Config.HeadDim], generator: generator));
        cache.Advance(Valid.SelectMany(v => v).ToArray(), 6);
        return cache;
    }

    [Theory]
    [InlineData(KvCacheType.F32)]
    [InlineData(KvCacheType.F16)]
    public void CompactRow_keeps_exactly_the_rows_real_slots_in_order(KvCacheType type)
    {
        using var cache = Filled(type);
        for (int row = 0; row < Valid.Length; row++)
        {
            using var compact = cache.CompactRow(row);
            var real = Enumerable.Range(0, 6).Where(s => Valid[row][s]).Select(s => (long)s).ToArray();
            Assert.Equal(real.Length, compact.Length);
            Assert.Equal(real.Length, compact.CommittedTokens[0]);
            for (int layer = 0; layer < Config.NumLayers; layer++)
            {
                var (keys, values) = Read(cache, layer);
                var (compactKeys, compactValues) = Read(compact, layer);
                Assert.True(Same(compactKeys, keys.narrow(0, row, 1).index_select(2, tensor(real))), $"row {row}, layer {layer}: keys");
                Assert.True(Same(compactValues, values.narrow(0, row, 1).index_select(2, tensor(real))), $"row {row}, layer {layer}: values");
            }
        }
    }

    [Theory]
    [InlineData(KvCacheType.F32)]
    [InlineData(KvCacheType.F16)]
    public void Stack_right_aligns_each_parts_first_slots_with_zero_padding(KvCacheType type)
    {
        using var cache = Filled(type);
        var parts = Enumerable.Range(0, Valid.Length).Select(cache.CompactRow).ToArray();
        try
        {
            int[] take = [6, 2, 5]; // row 1 keeps only a prefix of its kept sequence (a request that diverged after 2 tokens)
            using var stacked = KvCache.Stack(parts, 3, take);
            int[] used = [6, 2, 5]; // min(take, the part's length: 6, 4, 5)
            Assert.Equal(6, stacked.Length);
            Assert.Equal(9, stacked.Capacity);
            Assert.Equal(used.Select(u => (long)u), stacked.CommittedTokens);
            var valid = stacked.ValidPrefix.data<bool>().ToArray();
            for (int r = 0; r < 3; r++)
                Assert.Equal(Enumerable.Range(0, 6).Select(s => s >= 6 - used[r]), valid.Skip(r * 6).Take(6));
            for (int layer = 0; layer < Config.NumLayers; layer++)
            {
                var (keys, values) = Read(stacked, layer);
                for (int r = 0; r < 3; r++)
                {
                    var (partKeys, partValues) = Read(parts[r], layer);
                    var expectedKeys = cat([zeros(1, Config.NumKvHeads, 6 - used[r], Config.HeadDim), partKeys.narrow(2, 0, used[r])], 2);
                    var expectedValues = cat([zeros(1, Config.NumKvHeads, 6 - used[r], Config.HeadDim), partValues.narrow(2, 0, used[r])], 2);
                    Assert.True(Same(keys.narrow(0, r, 1), expectedKeys), $"row {r}, layer {layer}: keys");
                    Assert.True(Same(values.narrow(0, r, 1), expectedValues), $"row {r}, layer {layer}: values");
                }
            }
        }
        finally
        {
            foreach (var p in parts) p.Dispose();
        }
    }

    [Theory]
    [InlineData(KvCacheType.F32)]
    [InlineData(KvCacheType.F16)]
    public void StackRows_takes_each_rows_slots_from_its_first_slot(KvCacheType type)
    {
        using var cache = Filled(type);
        // Row 1's real slots (2..5, a row kept as it left a session), row 0's first three, a row with no cache (a miss), and
        // row 2 from slot 4 (its last two).
        var rows = new (KvCache?, int, int, int)[] { (cache, 1, 2, 4), (cache, 0, 0, 3), (null, 0, 0, 0), (cache, 2, 4, 9) };
        (int Row, int First, int Used)[] expected = [(1, 2, 4), (0, 0, 3), (0, 0, 0), (2, 4, 2)];
        using var stacked = KvCache.StackRows(rows, 5);
        Assert.Equal(4, stacked.Length);
        Assert.Equal(9, stacked.Capacity);
        Assert.Equal(expected.Select(e => (long)e.Used), stacked.CommittedTokens);
        var valid = stacked.ValidPrefix.data<bool>().ToArray();
        for (int r = 0; r < expected.Length; r++)
            Assert.Equal(Enumerable.Range(0, 4).Select(s => s >= 4 - expected[r].Used), valid.Skip(r * 4).Take(4));
        for (int layer = 0; layer < Config.NumLayers; layer++)
        {
            var (keys, values) = Read(stacked, layer);
            var (sourceKeys, sourceValues) = Read(cache, layer);
            for (int r = 0; r < expected.Length; r++)
            {
                var (row, first, used) = expected[r];
                var padding = zeros(1, Config.NumKvHeads, 4 - used, Config.HeadDim);
                var expectedKeys = cat([padding, sourceKeys.narrow(0, row, 1).narrow(2, first, used)], 2);
                var expectedValues = cat([padding, sourceValues.narrow(0, row, 1).narrow(2, first, used)], 2);
                Assert.True(Same(keys.narrow(0, r, 1), expectedKeys), $"row {r}, layer {layer}: keys");
                Assert.True(Same(values.narrow(0, r, 1), expectedValues), $"row {r}, layer {layer}: values");
            }
        }
    }

    [Theory]
    [InlineData(KvCacheType.F32)]
    [InlineData(KvCacheType.F16)]
    public void StackRows_zeroes_the_padding_and_spare_slots_of_reused_memory(KvCacheType type)
    {
        // StackRows writes into uninitialized buffers (only the slots no copy writes are zeroed): memory the allocator hands
        // back dirty must not show through. NaN-filled buffers of the stacked cache's shape are freed first, so the stack's
        // buffers are most likely that memory.
        using var cache = Filled(type);
        var rows = new (KvCache?, int, int, int)[] { (cache, 1, 2, 4), (cache, 0, 0, 3), (null, 0, 0, 0), (cache, 2, 4, 9) };
        (int Row, int First, int Used)[] expected = [(1, 2, 4), (0, 0, 3), (0, 0, 0), (2, 4, 2)];
        const int length = 4, capacity = 9; // the longest row's 4 slots + 5 spare
        var dtype = type == KvCacheType.F16 ? ScalarType.Float16 : ScalarType.Float32;
        using (var nan = float.NaN.ToScalar()) // held across the native calls (an implicit temporary Scalar may be freed mid-call by a GC)
            foreach (var dirty in Enumerable.Range(0, 2 * Config.NumLayers).Select(_ => full([rows.Length, Config.NumKvHeads, capacity, Config.HeadDim], nan, dtype)).ToList())
                dirty.Dispose();
        using var stacked = KvCache.StackRows(rows, capacity - length);
        Assert.Equal(capacity, stacked.Capacity);
        for (int layer = 0; layer < Config.NumLayers; layer++)
        {
            var (keys, values) = stacked.Buffers(layer);
            var (sourceKeys, sourceValues) = (cache.Buffers(layer).Keys.to(ScalarType.Float32), cache.Buffers(layer).Values.to(ScalarType.Float32));
            foreach (var (buffer, source) in new[] { (keys.to(ScalarType.Float32), sourceKeys), (values.to(ScalarType.Float32), sourceValues) })
                for (int r = 0; r < expected.Length; r++)
                {
                    var (row, first, used) = expected[r];
                    var padding = zeros(1, Config.NumKvHeads, length - used, Config.HeadDim);
                    var spare = zeros(1, Config.NumKvHeads, capacity - length, Config.HeadDim);
                    var expectedRow = cat([padding, source.narrow(0, row, 1).narrow(2, first, used), spare], 2);
                    Assert.True(Same(buffer.narrow(0, r, 1), expectedRow), $"row {r}, layer {layer}: every slot the copy does not write is zero");
                }
        }
    }
}
