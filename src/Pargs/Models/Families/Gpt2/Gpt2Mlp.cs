using TorchSharp;
using static TorchSharp.torch;

namespace Pargs.Models.Families.Gpt2;

/// <summary>c_proj(gelu_new(c_fc(x))), GELU with the tanh approximation as GPT-2 was trained.</summary>
public sealed class Gpt2Mlp : nn.Module<Tensor, Tensor>
{
    readonly Conv1D cFc, cProj;

    public Gpt2Mlp(ModelConfig config) : base(nameof(Gpt2Mlp))
    {
        cFc = new Conv1D(config.HiddenSize, config.IntermediateSize);
        cProj = new Conv1D(config.IntermediateSize, config.HiddenSize);
        register_module("c_fc", cFc);
        register_module("c_proj", cProj);
    }

    public override Tensor forward(Tensor x) => cProj.forward(GeluNew(cFc.forward(x)));

    /// <summary>0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).</summary>
    public static Tensor GeluNew(Tensor x)
        => 0.5 * x * (1.0 + tanh(Math.Sqrt(2.0 / Math.PI) * (x + 0.044715 * x.pow(3))));
}
