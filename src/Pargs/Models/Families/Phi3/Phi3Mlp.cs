using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Pargs.Models.Families.Phi3;

/// <summary>
/// Phi-3's SwiGLU with the gate and up projections fused into <c>gate_up_proj</c> (gate rows first, as transformers'
/// <c>chunk(2)</c> reads them): down(silu(gate) · up).
/// </summary>
public sealed class Phi3Mlp : nn.Module<Tensor, Tensor>
{
    readonly int intermediate;
    readonly Linear gateUpProj, downProj;

    public Phi3Mlp(ModelConfig config) : base(nameof(Phi3Mlp))
    {
        intermediate = config.IntermediateSize;
        gateUpProj = nn.Linear(config.HiddenSize, 2 * config.IntermediateSize, hasBias: false);
        downProj = nn.Linear(config.IntermediateSize, config.HiddenSize, hasBias: false);
        register_module("gate_up_proj", gateUpProj);
        register_module("down_proj", downProj);
    }

    public override Tensor forward(Tensor x)
    {
        var gateUp = gateUpProj.forward(x);
        var gate = gateUp.narrow(-1, 0, intermediate);
        var up = gateUp.narrow(-1, intermediate, intermediate);
        return downProj.forward(up * nn.functional.silu(gate));
    }
}
