using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Pargs.Models.Families.Gemma;

/// <summary>GeGLU feed-forward: down(gelu_tanh(gate(x)) · up(x)), GELU with the tanh approximation (gelu_pytorch_tanh).</summary>
public sealed class GemmaMlp : nn.Module<Tensor, Tensor>
{
    readonly Linear gateProj, upProj, downProj;

    public GemmaMlp(ModelConfig config) : base(nameof(GemmaMlp))
    {
        gateProj = nn.Linear(config.HiddenSize, config.IntermediateSize, hasBias: false);
        upProj = nn.Linear(config.HiddenSize, config.IntermediateSize, hasBias: false);
        downProj = nn.Linear(config.IntermediateSize, config.HiddenSize, hasBias: false);
        register_module("gate_proj", gateProj);
        register_module("up_proj", upProj);
        register_module("down_proj", downProj);
    }

    public override Tensor forward(Tensor x)
        => downProj.forward(GeluTanh(gateProj.forward(x)) * upProj.forward(x));

    /// <summary>0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))): torch's gelu(approximate="tanh").</summary>
    public static Tensor GeluTanh(Tensor x)
        => 0.5 * x * (1.0 + tanh(Math.Sqrt(2.0 / Math.PI) * (x + 0.044715 * x.pow(3))));
}
