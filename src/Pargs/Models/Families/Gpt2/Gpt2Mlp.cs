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
    {
        // Explicit Scalars held across their calls: TorchSharp frees an implicit Scalar in its finalizer and keeps no reference to it across the native call, so a collection during the call can free what libtorch reads ("Unknown scalar type").
        using Scalar half = 0.5.ToScalar(), one = 1.0.ToScalar(), three = 3.ToScalar(), cubic = 0.044715.ToScalar(), slope = Math.Sqrt(2.0 / Math.PI).ToScalar();
        return half * x * tanh(slope * x.Plus(cubic * x.pow(three))).Plus(one);
    }
}
