using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Pargs.Models.Families.Llama;

/// <summary>SwiGLU feed-forward: down(silu(gate(x)) · up(x)).</summary>
public sealed class LlamaMlp : nn.Module<Tensor, Tensor>
{
    readonly Linear gateProj, upProj, downProj;

    public LlamaMlp(ModelConfig config) : base(nameof(LlamaMlp))
    {
        gateProj = nn.Linear(config.HiddenSize, config.IntermediateSize, hasBias: false);
        upProj = nn.Linear(config.HiddenSize, config.IntermediateSize, hasBias: false);
        downProj = nn.Linear(config.IntermediateSize, config.HiddenSize, hasBias: false);
        register_module("gate_proj", gateProj);
        register_module("up_proj", upProj);
        register_module("down_proj", downProj);
    }

    public override Tensor forward(Tensor x)
        => downProj.forward(nn.functional.silu(gateProj.forward(x)) * upProj.forward(x));
}
