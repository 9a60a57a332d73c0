using Pargs.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Pargs.Training;

/// <summary>
/// PPO's actor and critic in one module, as TRL's AutoModelForCausalLMWithValueHead: the causal LM
/// (<c>pretrained_model</c>) and a scalar value head <c>v_head.summary</c> (Linear hidden → 1, with bias) on the LM's
/// last hidden states, so one forward gives the next-token logits and the value of every prefix. The backbone is
/// shared: the value loss (× vf_coef) trains it too. Chosen over TRL ≥ 0.12's separate value model (a second
/// backbone initialised from the reward model) because it costs one forward instead of two per micro-batch and works
/// with any scorer, including a gold reward that has no network to copy. TRL's head has dropout 0.1; this one has
/// none, so training stays deterministic and needs no torch random state in checkpoints.
/// </summary>
public sealed class PpoPolicyWithValueHead : nn.Module
{
    public const string ValueHeadWeight = "v_head.summary.weight";
    public const string ValueHeadBias = "v_head.summary.bias";

    readonly Linear valueHead;

    public PpoPolicyWithValueHead(CausalLM policy, int seed) : base(nameof(PpoPolicyWithValueHead))
    {
        Policy = policy;
        register_module("pretrained_model", policy);
        valueHead = nn.Linear(policy.Config.HiddenSize, 1, hasBias: true, dtype: policy.Backbone.TokenEmbeddingWeight.dtype);
        register_module("v_head_summary", valueHead);
        // torch.nn.Linear's default initialisation, U(−1/√hidden, 1/√hidden) for weight and bias, from its own
        // generator: the same head for a seed whatever else drew from torch's global one.
        var generator = new Generator((ulong)seed);
        double bound = 1.0 / Math.Sqrt(policy.Config.HiddenSize);
        using (no_grad())
        {
            valueHead.weight!.copy_(rand(valueHead.weight!.shape, generator: generator, dtype: valueHead.weight!.dtype).Times(2).Minus(1).Times(bound));
            valueHead.bias!.copy_(rand(valueHead.bias!.shape, generator: generator, dtype: valueHead.bias!.dtype).Times(2).Minus(1).Times(bound));
        }
    }

    public CausalLM Policy { get; }

    /// <summary>Logits [B, T, V] and values [B, T] of a right-padded batch (ids and valid [B, T]).</summary>
    public (Tensor Logits, Tensor Values) Forward(Tensor ids, Tensor valid)
    {
        using var scope = NewDisposeScope(); // the hidden states are this call's (Models/TransformerBackbone.ForwardInScope says why)
        var hidden = Policy.Backbone.ForwardPadded(ids, valid);
        return scope.MoveToOuter(Policy.LogitsFromHidden(hidden), valueHead.forward(hidden).squeeze(-1));
    }

    /// <summary>The value head's tensors under TRL's names.</summary>
    public Dictionary<string, Tensor> ValueHeadState() => new()
    {
        [ValueHeadWeight] = valueHead.weight!.detach().contiguous().clone(),
        [ValueHeadBias] = valueHead.bias!.detach().contiguous().clone(),
    };

    /// <summary>Restores the value head from <paramref name="tensors"/> (TRL's names); <paramref name="source"/> names the file in errors.</summary>
    public void LoadValueHead(IReadOnlyDictionary<string, Tensor> tensors, string source)
    {
        using var _ = no_grad();
        foreach (var (name, parameter) in new[] { (ValueHeadWeight, valueHead.weight!), (ValueHeadBias, valueHead.bias!) })
        {
            if (!tensors.TryGetValue(name, out var value)) throw new PargsException($"{source}: tensor \"{name}\" is missing");
            if (!value.shape.SequenceEqual(parameter.shape))
                throw new PargsException($"{source}: tensor \"{name}\" has shape [{string.Join(", ", value.shape)}], expected [{string.Join(", ", parameter.shape)}]");
            parameter.copy_(value.to(parameter.dtype));
        }
        if (tensors.Count != 2)
            throw new PargsException($"{source}: unexpected tensor(s) {string.Join(", ", tensors.Keys.Where(k => k != ValueHeadWeight && k != ValueHeadBias).Select(k => $"\"{k}\""))}");
    }
}
