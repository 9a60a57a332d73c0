using Pargs.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Pargs.Training;

/// <summary>
/// LoRA on a model whose layers call their weights directly (Pargs' Linear/Conv1D fields cannot be swapped for
/// adapter modules). Instead the adapted weight is kept MATERIALISED: before each forward,
/// <see cref="Sync"/> writes W = W₀ + s·B·A into the layer (s = alpha/rank), so the model computes exactly the
/// adapted function. The gradient then reaches A and B by the chain rule from G = ∂L/∂W:
/// ∂L/∂B = s·G·Aᵀ and ∂L/∂A = s·Bᵀ·G, delivered through <see cref="Surrogate"/>, a loss with L's value whose
/// backward produces exactly those gradients. This module holds only A and B (what the optimizer sees; parameter
/// names "&lt;weight name&gt;.lora_A" / ".lora_B" with dots as underscores). W₀ is a private copy.
/// Merge-on-save is free: after <see cref="Sync"/> the model's weights ARE W₀ + s·B·A.
/// </summary>
public sealed class LoraAdapters : nn.Module
{
    sealed record Adapter(string Name, Parameter Weight, Tensor Base, Parameter A, Parameter B);

    readonly List<Adapter> adapters = new();
    readonly double scale;

    public LoraAdapters(nn.Module model, LoraOptions options) : base(nameof(LoraAdapters))
    {
        options.Validate();
        scale = options.Scale;
        var targets = options.TargetModules.ToHashSet();
        var generator = new Generator((ulong)options.Seed);
        foreach (var (name, weight) in model.named_parameters())
        {
            var parts = name.Split('.');
            bool targeted = parts.Length >= 2 && parts[^1] == "weight" && targets.Contains(parts[^2]) && weight.dim() == 2;
            weight.requires_grad = targeted; // frozen base; targeted weights only to receive G (never optimised)
            if (!targeted) continue;
            long rows = weight.shape[0], cols = weight.shape[1];
            // PEFT's init: A ~ U(−1/√in, 1/√in) (kaiming-uniform with a = √5), B = 0.
            double bound = 1.0 / Math.Sqrt(cols);
            var a = new Parameter(rand(new long[] { options.Rank, cols }, generator: generator, dtype: weight.dtype).Times(2).Minus(1).Times(bound));
            var b = new Parameter(zeros(new long[] { rows, options.Rank }, dtype: weight.dtype));
            string key = name.Replace('.', '_');
            register_parameter(key + "_lora_A", a);
            register_parameter(key + "_lora_B", b);
            adapters.Add(new Adapter(name, weight, weight.detach().clone(), a, b));
        }
        if (adapters.Count == 0)
            throw new PargsException($"LoRA: no 2-D weight of a module named {string.Join(", ", options.TargetModules)} (Llama: q_proj k_proj v_proj o_proj gate_proj up_proj down_proj; GPT-2: c_attn c_proj c_fc)");
    }

    /// <summary>Names of the adapted weights.</summary>
    public IReadOnlyList<string> AdaptedWeights => adapters.Select(a => a.Name).ToList();

    /// <summary>Writes W₀ + s·B·A into every adapted weight (call after each optimizer step, before a forward).</summary>
    public void Sync()
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        foreach (var adapter in adapters)
            adapter.Weight.copy_(adapter.Base.Plus(adapter.B.matmul(adapter.A).Times(scale)));
    }

    /// <summary>
    /// A loss equal to <paramref name="loss"/> in value whose gradient w.r.t. A and B is the LoRA gradient of
    /// <paramref name="loss"/> (which must have been computed after <see cref="Sync"/>). Consumes loss's graph.
    /// </summary>
    public Tensor Surrogate(Tensor loss)
    {
        if (!loss.requires_grad) return loss; // computed under no_grad: nothing to differentiate (libtorch would abort)
        using var scope = NewDisposeScope(); // the gradients and partial sums are this call's (Models/TransformerBackbone.ForwardInScope says why)
        var weights = adapters.Select(a => (Tensor)a.Weight).ToList();
        var grads = torch.autograd.grad([loss], weights, allow_unused: true);
        Tensor surrogate = zeros(new long[0], dtype: loss.dtype);
        for (int i = 0; i < adapters.Count; i++)
        {
            if (grads[i] is null || grads[i].IsInvalid) continue;
            surrogate = surrogate.Plus((adapters[i].B.matmul(adapters[i].A).Times(scale) * grads[i].detach()).sum());
        }
        return scope.MoveToOuter((surrogate - surrogate.detach()).Plus(loss.detach()));
    }
}
