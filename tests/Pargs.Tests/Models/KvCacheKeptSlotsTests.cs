using Pargs.Models;
using static TorchSharp.torch;

namespace Pargs.Tests.Models;

/// <summary>
/// A sibling forward's candidate slots kept across requests (<see cref="KvCache.SiblingSlots"/>, then
/// <see cref="KvCache.AppendSlots"/> into another cache holding the same prefix — what pargs serve's /v1/rewards does
/// between a steering client's steps) give the cache <see cref="KvCache.CommitSibling"/> gives in place: same slots, same
/// bits, same validity.
/// </summary>
public class KvCacheKeptSlotsTests
{
    static readonly ModelConfig Config = TinyModels.LlamaConfig(40);
    const int Rows = 3, Prefix = 5, K = 4;

    /// <summary>All committed keys and values of a layer as float32 (one uncommitted zero slot written to read them).</summary>
    static (Tensor Keys, Tensor Values) Read(KvCache cache, int layer)
    {
        cache.Reserve(1);
        using var zero = zeros(cache.BatchSize, Config.NumKvHeads, 1, Config.HeadDim);
        var (keys, values) = cache.Write(layer, zero, zero);
        return (keys.narrow(2, 0, cache.Length).to(ScalarType.Float32).clone(), values.narrow(2, 0, cache.Length).to(ScalarType.Float32).clone());
    }

    /// <summary>A prefix of <see cref="Prefix"/> slots (row 1 left-padded by two) and K sibling slots written past it.</summary>
    static KvCache WithSiblings(KvCacheType type, int seed)
    {
        var cache = new KvCache(Config, Rows, 2, type);
        cache.Reserve(Prefix);
        var generator = new TorchSharp.torch.Generator((ulong)seed);
        for (int layer = 0; layer < Config.NumLayers; layer++)
            cache.Write(layer, randn([Rows, Config.NumKvHeads, Prefix, Config.HeadDim], generator: generator), randn([Rows, Config.NumKvHeads, Prefix, Config.HeadDim], generator: generator));
        cache.Advance(Enumerable.Range(0, Rows * Prefix).Select(i => !(i / Prefix == 1 && i % Prefix < 2)).ToArray(), Prefix);
        cache.Reserve(K);
        for (int layer = 0; layer < Config.NumLayers; layer++)
            cache.Write(layer, randn([Rows, Config.NumKvHeads, K, Config.HeadDim], generator: generator), randn([Rows, Config.NumKvHeads, K, Config.HeadDim], generator: generator));
        return cache;
    }

    [Theory]
    [InlineData(KvCacheType.F32)]
    [InlineData(KvCacheType.F16)]
    public void Kept_sibling_slots_appended_later_equal_committing_the_sibling_in_place(KvCacheType type)
    {
        long[] chosen = [2, 0, 3];
        using var inPlace = WithSiblings(type, 11);
        using var kept = inPlace.SiblingSlots(K);
        Assert.Equal(K, kept.Length);
        // The next request's cache: the same prefixes (rows in another order, as a later pass gathers them), then the kept slots.
        using var later = WithSiblings(type, 11);
        using var prefixes = later.SelectRows([2, 0, 1]);
        prefixes.AppendSlots([(kept, 2, (int)chosen[2]), (kept, 0, (int)chosen[0]), (kept, 1, (int)chosen[1])]);
        inPlace.CommitSibling(chosen);
        using var expected = inPlace.SelectRows([2, 0, 1]);
        Assert.Equal(expected.Length, prefixes.Length);
        Assert.Equal(expected.CommittedTokens, prefixes.CommittedTokens);
        for (int row = 0; row < Rows; row++)
            for (int slot = 0; slot < expected.Length; slot++)
                Assert.Equal(expected.ValidSlots[row * expected.Capacity + slot], prefixes.ValidSlots[row * prefixes.Capacity + slot]);
        for (int layer = 0; layer < Config.NumLayers; layer++)
        {
            var (keys, values) = Read(prefixes, layer);
            var (expectedKeys, expectedValues) = Read(expected, layer);
            Assert.True(keys.eq(expectedKeys).all().item<bool>(), $"layer {layer}: keys differ");
            Assert.True(values.eq(expectedValues).all().item<bool>(), $"layer {layer}: values differ");
        }
    }

    [Fact]
    public void A_slot_that_was_never_written_or_another_models_is_refused()
    {
        using var cache = WithSiblings(KvCacheType.F32, 3);
        using var kept = cache.SiblingSlots(K);
        using var other = WithSiblings(KvCacheType.F32, 4);
        Assert.Throws<ArgumentException>(() => other.AppendSlots([(kept, 0, K), (kept, 1, 0), (kept, 2, 0)])); // slot K does not exist
        Assert.Throws<ArgumentException>(() => other.AppendSlots([(kept, 0, 0)])); // one slot for three rows
        using var f16 = WithSiblings(KvCacheType.F16, 5);
        Assert.Throws<ArgumentException>(() => f16.AppendSlots([(kept, 0, 0), (kept, 1, 0), (kept, 2, 0)])); // another cache type
        Assert.Throws<ArgumentOutOfRangeException>(() => cache.SiblingSlots(cache.Capacity));
    }
}
