using Pargs.Models;
using Pargs.Models.Cpu;
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

    static ModelConfig Config(string name) => name switch
    {
        "qwen2" => TinyModels.Qwen2Config(),
        // Widths that are not multiples of the 8-float vectors or the 4-row weight blocks, and no GQA.
        "odd" => TinyModels.LlamaConfig(vocab: 67) with { HiddenSize = 36, NumHeads = 3, NumKvHeads = 3, IntermediateSize = 53 },
        _ => TinyModels.LlamaConfig(),
    };

    /// <summary>
    /// <see cref="Decode"/> through torch, then through the kernel on <paramref name="threads"/> threads, and how many
    /// forwards the kernel ran (so a test can tell it did not fall back to torch).
    /// </summary>
    internal static (List<Tensor> Torch, List<Tensor> Kernel, long KernelForwards) DecodeBothWays(CausalLM model, int threads)
    {
        var reference = Decode(model, kernel: false);
        long before = CpuKernels.ForwardsOnThisThread;
        using (CpuThreads.Scoped(threads)) return (reference, Decode(model, kernel: true), CpuKernels.ForwardsOnThisThread - before);
    }

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

    [Theory, MemberData(nameof(Cases))]
    public void Kernel_decoding_matches_the_torch_ops(string name, int threads)
    {
        using var model = TinyModels.RandomLM(Config(name), seed: 77);
        var (reference, fast, kernelForwards) = DecodeBothWays(model, threads);
        // 4 steps + siblings + 1 step took the kernel; the prefill (7 tokens × 3 rows) is within its size too.
        Assert.True(kernelForwards >= 6, "the decode kernel did not run");
        Assert.Equal(reference.Count, fast.Count);
        for (int i = 0; i < reference.Count; i++)
        {
            float diff = (reference[i] - fast[i]).abs().max().item<float>();
            Assert.True(diff <= 1e-5f, $"stage {i}: max |torch − kernel| = {diff}");
        }
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
