using Pargs.Models;
using Pargs.Models.Cpu;
using Pargs.Models.Families.Llama;
using static TorchSharp.torch;

namespace Pargs.Tests.Models;

/// <summary>
/// Pargs' CPU decode kernel against the torch ops it replaces (the reference path, itself checked against
/// the naive forward and full recomputation in <see cref="KvCacheTests"/>): the same hidden states, logits and
/// cache contents for prefill-then-steps and for sibling candidates, on one and on two threads.
/// </summary>
public class LlamaDecodeKernelTests
{
    public static TheoryData<string, int> Cases => new()
    {
        { "llama", 1 }, { "qwen2", 1 }, { "odd", 1 }, { "llama", 2 }, { "odd", 2 },
    };

    /// <summary>The 2-thread cases with small forwards split (every tiny model's forward is under SerialWork's default).</summary>
    public static TheoryData<string> SplitCases => new() { "llama", "qwen2", "odd" };

    static ModelConfig Config(string name) => name switch
    {
        "qwen2" => TinyModels.Qwen2Config(),
        // Widths that are not multiples of the 8-float vectors or the 4-row weight blocks, and no GQA.
        "odd" => TinyModels.LlamaConfig(vocab: 67) with { HiddenSize = 36, NumHeads = 3, NumKvHeads = 3, IntermediateSize = 53 },
        _ => TinyModels.LlamaConfig(),
    };

    /// <summary>
    /// <see cref="Decode"/> through torch, then through the kernel on <paramref name="threads"/> threads, and how many
    /// forwards the kernel ran (so a test can tell it did not fall back to torch). <paramref name="splitSmallForwards"/>: the
    /// tiny models' forwards split over the threads as a large model's do (SerialWork 0), not kept on one thread.
    /// </summary>
    internal static (List<Tensor> Torch, List<Tensor> Kernel, long KernelForwards) DecodeBothWays(CausalLM model, int threads, bool splitSmallForwards = false)
    {
        var reference = Decode(model, kernel: false);
        long before = CpuKernels.ForwardsOnThisThread;
        using (CpuThreads.Scoped(threads))
        using (SplitSmallForwards(splitSmallForwards))
            return (reference, Decode(model, kernel: true), CpuKernels.ForwardsOnThisThread - before);
    }

    /// <summary>With <paramref name="split"/>, this thread's kernel forwards split however small (SerialWork 0) until disposed.</summary>
    internal static IDisposable? SplitSmallForwards(bool split) => split ? LlamaDecodeKernel.SerialWorkOverride(0) : null;

    /// <summary>Prefill a ragged batch, take 4 steps, score 3 siblings per row, commit one, step again: logits of every stage.</summary>
    internal static List<Tensor> Decode(CausalLM model, bool kernel)
    {
        using var _ = no_grad();
        using var off = kernel ? null : CpuKernels.Suppress();
        var c = model.Config;
        int[][] prompts = { TinyModels.Tokens(5, c.VocabSize, 1), TinyModels.Tokens(2, c.VocabSize, 2), TinyModels.Tokens(7, c.VocabSize, 3) };
        using var session = new BatchSession(model.Backbone, prompts.Length, initialCapacity: 4);
        var outputs = new List<Tensor> { model.LogitsFromHidden(session.Prefill(prompts)) };
        for (int s = 0; s < 4; s++)
            outputs.Add(model.LogitsFromHidden(session.Step(tensor(new long[] { 3 + s, 10 + s, 20 + s }))));
        outputs.Add(model.LogitsFromHidden(session.Siblings(tensor(new long[] { 4, 5, 6, 7, 8, 9, 11, 12, 13 }, 3, 3))));
        session.CommitSibling(new long[] { 2, 0, 1 });
        outputs.Add(model.LogitsFromHidden(session.Step(tensor(new long[] { 14, 15, 16 }))));
        var (keys, values) = session.Cache.Write(0, zeros(3, c.NumKvHeads, 0, c.HeadDim), zeros(3, c.NumKvHeads, 0, c.HeadDim));
        outputs.Add(keys.clone());
        outputs.Add(values.clone());
        return outputs;
    }

    [Theory, MemberData(nameof(SplitCases))]
    public void Kernel_decoding_with_small_forwards_split_matches_the_torch_ops(string name)
        => AssertKernelMatchesTorch(name, threads: 2, splitSmallForwards: true);

    /// <summary>
    /// One forward's bits do not depend on whether it computes on one thread (the Serial scope small forwards take) or
    /// splits its products and attention over two: each output element is summed in the same order either way.
    /// </summary>
    [Theory, MemberData(nameof(SplitCases))]
    public void A_small_forward_gives_the_same_bits_serial_as_split(string name)
    {
        using var model = TinyModels.RandomLM(Config(name), seed: 78);
        using var threadCount = CpuThreads.Scoped(2);
        Assert.True(LlamaDecodeKernel.SerialWork > 0, "the default keeps small forwards serial");
        var serial = Decode(model, kernel: true);
        List<Tensor> split;
        using (LlamaDecodeKernel.SerialWorkOverride(0))
        {
            Assert.Equal(0, LlamaDecodeKernel.SerialWork);
            split = Decode(model, kernel: true);
        }
        Assert.True(LlamaDecodeKernel.SerialWork > 0, "the override ended with its scope");
        Assert.Equal(serial.Count, split.Count);
        for (int i = 0; i < serial.Count; i++)
            Assert.True(serial[i].eq(split[i]).all().item<bool>(), $"{name}, stage {i}: the split forward's bits differ from the serial one's");
    }

    [Theory, MemberData(nameof(Cases))]
    public void Kernel_decoding_matches_the_torch_ops(string name, int threads) => AssertKernelMatchesTorch(name, threads, splitSmallForwards: false);

    static void AssertKernelMatchesTorch(string name, int threads, bool splitSmallForwards)
    {
        using var model = TinyModels.RandomLM(Config(name), seed: 77);
        var (reference, fast, kernelForwards) = DecodeBothWays(model, threads, splitSmallForwards);
        // 4 steps + siblings + 1 step took the kernel; the prefill (7 tokens × 3 rows) is within its size too.
        Assert.True(kernelForwards >= 6, "the decode kernel did not run");
        Assert.Equal(reference.Count, fast.Count);
        for (int i = 0; i < reference.Count; i++)
        {
            float diff = (reference[i] - fast[i]).abs().max().item<float>();
            Assert.True(diff <= 1e-5f, $"stage {i}: max |torch − kernel| = {diff}");
        }
    }

    /// <summary>The 15M shape (hidden 288, 6 layers, 6 heads, ff 768) with a small vocabulary: what the kernel now takes at any size.</summary>
    internal static ModelConfig Shape15M() => Pargs.Benchmarks.BenchmarkModels.Llama15MShape() with { VocabSize = 512 };

    /// <summary>
    /// A reward model's sibling forwards of the 15M shape (11 and 16 rows × 10 candidates: a 16-stream server step) and a
    /// 4 × 48-token prefill (its joins) — forwards over 50 tokens, which the kernel used to leave to torch and now takes
    /// because CpuGemm takes every product — through the kernel and through torch: hidden states within 2e-5 of their
    /// largest magnitude, as close as the 48-token prefill the kernel took before.
    /// </summary>
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void Kernel_takes_the_15M_shapes_large_forwards_and_matches_torch(int threads)
    {
        using var _ = no_grad();
        using var rm = TinyModels.RandomRM(Shape15M(), seed: 15);
        var reference = LargeForwards(rm.Backbone, kernel: false, threads);
        var fast = LargeForwards(rm.Backbone, kernel: true, threads);
        Assert.Equal(reference.Hidden.Count, fast.Hidden.Count);
        Assert.Equal(0, reference.KernelForwards);
        Assert.Equal(reference.Hidden.Count, fast.KernelForwards); // every forward ran on the kernel, none fell back to torch
        for (int i = 0; i < reference.Hidden.Count; i++)
        {
            Assert.Equal(reference.Hidden[i].shape, fast.Hidden[i].shape);
            float diff = (reference.Hidden[i] - fast.Hidden[i]).abs().max().item<float>();
            float scale = reference.Hidden[i].abs().max().item<float>();
            // Six layers of 288- and 768-wide sums in another order: 0.85–1.04e-5 of the largest |h| (~4.3 at rms 1) measured, the
            // 48-token prefill the kernel already took included; the tiny models' 1e-5 at |h| ~ 1, scaled by the magnitude, 2× headroom.
            Assert.True(diff <= 2e-5f * Math.Max(1f, scale), $"forward {i}: max |torch − kernel| = {diff}, max |torch| = {scale}");
        }
        // The kernel's rows keep their bits whatever the batch: rows 0..10 of the 16-row forward are the 11-row forward's.
        Assert.Equal(0f, (fast.Hidden[2] - fast.Hidden[3].narrow(0, 0, 11)).abs().max().item<float>());
    }

    /// <summary>
    /// A 48-token prefill (which the kernel took before), a prefill of 4 × 48 tokens, and sibling forwards of 11 × 10 and
    /// 16 × 10 candidates over ragged prompts; returns the hidden states and how many forwards the kernel ran on
    /// this thread (a split forward's parts run on the kernel too, counted on whichever thread ran them: the whole counts here).
    /// </summary>
    static (List<Tensor> Hidden, long KernelForwards) LargeForwards(TransformerBackbone backbone, bool kernel, int threads)
    {
        using var off = kernel ? null : CpuKernels.Suppress();
        using var threadCount = CpuThreads.Scoped(threads);
        var c = backbone.Config;
        var hidden = new List<Tensor>();
        long forwards = 0;
        void Count(Func<Tensor> forward)
        {
            long before = CpuKernels.ForwardsOnThisThread;
            hidden.Add(forward());
            forwards += CpuKernels.ForwardsOnThisThread > before ? 1 : 0;
        }
        using (var one = new BatchSession(backbone, 1, 64)) Count(() => one.Append(tensor(Enumerable.Range(0, 48).Select(i => (long)(3 + i * 31 % (c.VocabSize - 3))).ToArray(), 1, 48)));
        using var joined = new BatchSession(backbone, 4, 64);
        Count(() => joined.Append(tensor(Enumerable.Range(0, 4 * 48).Select(i => (long)(3 + i * 31 % (c.VocabSize - 3))).ToArray(), 4, 48)));
        foreach (int rows in new[] { 11, 16 })
        {
            using var session = new BatchSession(backbone, rows, 64);
            session.Prefill(Enumerable.Range(0, rows).Select(r => TinyModels.Tokens(5 + r % 4, c.VocabSize, 30 + r)).ToArray());
            Count(() => session.Siblings(tensor(Enumerable.Range(0, rows * 10).Select(i => (long)(3 + i * 13 % (c.VocabSize - 3))).ToArray(), rows, 10)));
        }
        return (hidden, forwards);
    }

    [Fact]
    public void Kernel_leaves_large_forwards_to_torch_when_the_gemm_does_not_take_the_products()
    {
        using var _ = no_grad();
        // The 110M shape's widths (ff 2048 × 768: a matrix over CpuGemm's 4 MiB) in one layer: a 40-token prefill is torch's.
        var config = TinyModels.LlamaConfig(vocab: 64) with { HiddenSize = 768, NumHeads = 12, NumKvHeads = 12, IntermediateSize = 2048, NumLayers = 1 };
        using var model = TinyModels.RandomLM(config, seed: 3);
        using var session = new BatchSession(model.Backbone, 1, 64);
        long before = CpuKernels.ForwardsOnThisThread;
        session.Prefill(new[] { TinyModels.Tokens(40, 64, 1) });
        Assert.Equal(before, CpuKernels.ForwardsOnThisThread);
        session.Step(tensor(new long[] { 5 })); // a decoding step is the kernel's at any width
        Assert.Equal(before + 1, CpuKernels.ForwardsOnThisThread);
    }

    [Fact]
    public void Kernel_declines_what_it_does_not_handle_and_torch_runs_it()
    {
        using var model = TinyModels.RandomLM(TinyModels.LlamaConfig(), seed: 5);
        long before = CpuKernels.ForwardsOnThisThread;
        using var session = new BatchSession(model.Backbone, 1);
        session.Prefill(new[] { new[] { 1, 2, 3 } }); // gradients enabled: training-style calls keep torch's autograd
        Assert.Equal(before, CpuKernels.ForwardsOnThisThread);
        using var _ = no_grad();
        ColumnMajor.Apply(model); // a layout the kernel does not read
        session.Step(tensor(new long[] { 4 }));
        Assert.Equal(before, CpuKernels.ForwardsOnThisThread);
    }

    [Fact]
    public void Cpu_linear_matches_torch_linear_with_a_bias_and_odd_sizes()
    {
        using var _ = no_grad();
        var x = randn(3, 2, 37, generator: new TorchSharp.torch.Generator(3));
        var w = randn(41, 37, generator: new TorchSharp.torch.Generator(4));
        var b = randn(41, generator: new TorchSharp.torch.Generator(5));
        var y = CpuLinear.TryForward(x, w, b);
        Assert.NotNull(y);
        Assert.Equal(new long[] { 3, 2, 41 }, y!.shape);
        float diff = (y - nn.functional.linear(x, w, b)).abs().max().item<float>();
        Assert.True(diff <= 1e-5f, $"max diff {diff}");
        Assert.Null(CpuLinear.TryForward(randn(CpuLinear.MaxRows + 1, 37), w)); // a real GEMM: torch's job

        // A non-contiguous input goes through a contiguous copy; a one-output head can drop its unit dim.
        var transposed = randn(37, 5, generator: new TorchSharp.torch.Generator(6)).t();
        var yt = CpuLinear.TryForward(transposed, w, b);
        Assert.NotNull(yt);
        Assert.True((yt! - nn.functional.linear(transposed, w, b)).abs().max().item<float>() <= 1e-5f);
        var head = w.narrow(0, 0, 1);
        var scores = CpuLinear.TryForward(x, head, squeezeOutput: true);
        Assert.Equal(new long[] { 3, 2 }, scores!.shape);
        Assert.True((scores - nn.functional.linear(x, head).squeeze(-1)).abs().max().item<float>() <= 1e-5f);
        Assert.Null(CpuLinear.TryForward(x, w, squeezeOutput: true)); // 41 outputs have no unit dim to drop
    }
}
