using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Pargs.Models.Families.Llama;

/// <summary>RMSNorm (TorchSharp 0.107 has none): x / sqrt(mean(x²) + eps) · weight.</summary>
public sealed class RmsNorm : nn.Module<Tensor, Tensor>
{
    readonly double eps;
    public Parameter weight;

    public RmsNorm(int size, double eps) : base(nameof(RmsNorm))
    {
        this.eps = eps;
        weight = nn.Parameter(ones(size));
        register_parameter("weight", weight);
    }

    public override Tensor forward(Tensor x)
    {
        // Explicit Scalars held across their calls: TorchSharp frees an implicit Scalar in its finalizer and keeps no reference to it across the native call, so a collection during the call can free what libtorch reads ("Unknown scalar type").
        using Scalar two = 2.ToScalar(), epsilon = eps.ToScalar();
        return x * x.pow(two).mean(new long[] { -1 }, keepdim: true).Plus(epsilon).rsqrt() * weight;
    }
}
