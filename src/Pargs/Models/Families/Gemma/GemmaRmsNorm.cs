using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Pargs.Models.Families.Gemma;

/// <summary>
/// Gemma's RMSNorm: x / √(mean(x²) + eps) · (1 + w), in float32. The stored weight is the offset from one
/// (initialised to zeros), unlike Llama's, which multiplies by w itself; llama.cpp stores 1 + w instead.
/// </summary>
public sealed class GemmaRmsNorm : nn.Module<Tensor, Tensor>
{
    readonly double eps;
    public Parameter weight;

    public GemmaRmsNorm(int size, double eps) : base(nameof(GemmaRmsNorm))
    {
        this.eps = eps;
        weight = nn.Parameter(zeros(size));
        register_parameter("weight", weight);
    }

    public override Tensor forward(Tensor x)
    {
        // Explicit Scalars held across their calls: TorchSharp frees an implicit Scalar in its finalizer and keeps no reference to it across the native call, so a collection during the call can free what libtorch reads ("Unknown scalar type").
        using Scalar two = 2.ToScalar(), epsilon = eps.ToScalar(), one = 1.0.ToScalar();
        return x * x.pow(two).mean(new long[] { -1 }, keepdim: true).Plus(epsilon).rsqrt() * weight.Plus(one);
    }
}
