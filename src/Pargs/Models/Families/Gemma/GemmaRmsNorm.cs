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
        => x * (x.pow(2).mean(new long[] { -1 }, keepdim: true) + eps).rsqrt() * (1.0 + weight);
}
