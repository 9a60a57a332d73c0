using Pargs.Models;
using static TorchSharp.torch;

namespace Pargs.Tests.Models;

/// <summary>
/// A sibling forward over rows that each keep their own one-row cache (<see cref="BatchSession.SiblingsOfRows"/>, the
/// decode kernel reading each row where it lies) gives the bits of the same forward over those rows stacked into one
/// session cache (<see cref="KvCache.StackRows"/>, then <see cref="BatchSession.Siblings"/>): rows of different lengths,
/// over two steps with a chosen candidate committed in place in between (<see cref="KvCache.CommitSibling"/>).
/// </summary>
public class RowSiblingsTests
{
    static readonly ModelConfig Config = TinyModels.LlamaConfig(40);
    const int K = 4;

    static KvCache Prefilled(TransformerBackbone backbone, int[] prompt)
    {
        using var _ = no_grad();
        using var session = new BatchSession(backbone, 1, prompt.Length + 1);
        session.Prefill([prompt]).Dispose();
        return session.Cache.CompactRow(0);
    }

    [Fact]
    public void Siblings_over_rows_kept_apart_equal_the_stacked_forward_bit_for_bit_and_commit_in_place()
    {
        using var _ = no_grad();
        var rm = TinyModels.RandomRM(Config, seed: 5);
        int[][] prompts = [TinyModels.Tokens(7, 40, 1), TinyModels.Tokens(3, 40, 2), TinyModels.Tokens(11, 40, 3)];
        var rows = prompts.Select(p => Prefilled(rm.Backbone, p)).ToList();
        using var stacked = new BatchSession(rm.Backbone, 0, 1);
        Assert.True(stacked.TakesRowSiblings(prompts.Length * K));
        try
        {
            long[][] candidates = [[5, 9, 1, 30], [2, 2, 17, 3], [39, 0, 8, 21]];
            long[][] chosen = [[2, 0, 3], [1, 3, 0]];
            stacked.AddCachedRows(KvCache.StackRows(rows.Select(r => ((KvCache?)r, 0, 0, r.Length)).ToArray(), K + 4));
            for (int step = 0; step < chosen.Length; step++)
            {
                using var ids = tensor(candidates.SelectMany(c => c).ToArray(), prompts.Length, K);
                using var expected = stacked.Siblings(ids).contiguous();
                using var apart = stacked.SiblingsOfRows(rows, ids).contiguous();
                Assert.Equal(expected.shape, apart.shape);
                Assert.True(expected.eq(apart).all().item<bool>(), $"step {step}: the rows kept apart gave other hidden states");
                stacked.Cache.CommitSibling(chosen[step]);
                for (int r = 0; r < rows.Count; r++)
                {
                    rows[r].CommitSibling([chosen[step][r]]);
                    Assert.Equal(prompts[r].Length + step + 1, rows[r].Length);
                    Assert.Equal(stacked.Cache.CommittedTokens[r], rows[r].CommittedTokens[0]);
                }
                candidates = candidates.Select(c => c.Select(id => (id * 7 + 3) % 40).ToArray()).ToArray();
            }
        }
        finally { foreach (var row in rows) row.Dispose(); }
    }

    /// <summary>
    /// Where the decode kernel does not take the forward over rows kept apart (here: gradient mode on), SiblingsOfRows stacks
    /// the rows for it and writes each row's candidate slots back where the kernel would have: the same hidden states (up to
    /// the torch forward's order of sums), and after a commit in place the next forward over the rows agrees too.
    /// </summary>
    [Fact]
    public void Siblings_over_rows_the_kernel_declines_are_stacked_and_their_slots_written_back()
    {
        var rm = TinyModels.RandomRM(Config, seed: 6);
        int[][] prompts = [TinyModels.Tokens(4, 40, 7), TinyModels.Tokens(8, 40, 8)];
        var viaKernel = prompts.Select(p => Prefilled(rm.Backbone, p)).ToList();
        var viaStack = prompts.Select(p => Prefilled(rm.Backbone, p)).ToList();
        using var session = new BatchSession(rm.Backbone, 0, 1);
        try
        {
            using var ids = tensor(new long[] { 5, 9, 1, 30, 2, 2, 17, 3 }, 2, K);
            Tensor expected, stacked;
            using (no_grad()) expected = session.SiblingsOfRows(viaKernel, ids);
            Assert.True(is_grad_enabled() && !session.TakesRowSiblings(2 * K));
            stacked = session.SiblingsOfRows(viaStack, ids).detach();
            Assert.Equal(0, session.BatchSize);
            Assert.True((expected - stacked).abs().max().item<float>() <= 1e-5f, "the stacked forward gave other hidden states");
            foreach (var rows in new[] { viaKernel, viaStack }) { rows[0].CommitSibling([3]); rows[1].CommitSibling([1]); }
            using (no_grad())
            {
                using var next = tensor(new long[] { 11, 12, 13, 14, 21, 22, 23, 24 }, 2, K);
                var a = session.SiblingsOfRows(viaKernel, next);
                var c = session.SiblingsOfRows(viaStack, next);
                Assert.True((a - c).abs().max().item<float>() <= 1e-5f, "the candidate slots written back differ from the kernel's");
            }
        }
        finally { foreach (var row in viaKernel.Concat(viaStack)) row.Dispose(); }
    }

    /// <summary>KvCache.AllocatedBytes (counted from the shape it holds) against libtorch's own count of every buffer's elements.</summary>
    [Theory]
    [InlineData(KvCacheType.F32)]
    [InlineData(KvCacheType.F16)]
    public void Allocated_bytes_count_what_libtorch_holds_for_every_kind_of_cache(KvCacheType type)
    {
        using var _ = no_grad();
        var lm = TinyModels.RandomLM(Config, seed: 8);
        lm.Backbone.KvCacheType = type;
        using var session = new BatchSession(lm.Backbone, 0, 2);
        session.AddRows([TinyModels.Tokens(5, 40, 1), TinyModels.Tokens(9, 40, 2), TinyModels.Tokens(3, 40, 3)], 12); // grown past 2 slots
        static long Counted(KvCache cache) => Enumerable.Range(0, Config.NumLayers)
            .Sum(l => cache.Buffers(l) is var (k, v) ? (k.NumberOfElements + v.NumberOfElements) * cache.ElementBytes : 0);
        Assert.Equal(Counted(session.Cache), session.Cache.AllocatedBytes);
        session.SelectRows([0, 2]); // a row leaves in place: the buffers become views of their storage's first rows
        Assert.Equal(Counted(session.Cache), session.Cache.AllocatedBytes);
        using var compact = session.Cache.CompactRow(1);
        Assert.Equal(Counted(compact), compact.AllocatedBytes);
        using var stacked = KvCache.StackRows([(session.Cache, 0, 0, session.Cache.Length), (compact, 0, 0, compact.Length)], 3);
        Assert.Equal(Counted(stacked), stacked.AllocatedBytes);
        using var empty = new KvCache(Config, 2, 4, type);
        Assert.Equal(0, empty.AllocatedBytes); // layers allocate on first use
    }

    [Fact]
    public void A_mask_that_lets_a_row_see_its_padding_is_refused()
    {
        using var _ = no_grad();
        var rm = TinyModels.RandomRM(Config, seed: 5);
        using var longer = Prefilled(rm.Backbone, TinyModels.Tokens(6, 40, 1));
        using var shorter = Prefilled(rm.Backbone, TinyModels.Tokens(2, 40, 2));
        longer.Reserve(1);
        shorter.Reserve(1);
        var kernel = Config.Family.CreateDecodeKernel(rm.Backbone)!;
        var mask = Enumerable.Repeat(true, 2 * 7).ToArray(); // every slot, the shorter row's 4 padding slots too
        Assert.Throws<ArgumentException>(() => kernel.TryForwardRows(tensor(new long[] { 1, 2 }, 2, 1), tensor(new long[] { 6, 2 }, 2, 1),
                                                                     tensor(mask, new long[] { 2, 1, 1, 7 }), [longer, shorter]));
    }
}
