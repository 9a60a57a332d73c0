using TorchSharp;
using static TorchSharp.torch;

namespace Pargs.Models;

/// <summary>
/// Tensor addition with an alpha Scalar that is never finalized. WHY: TorchSharp's <c>a + b</c> (and
/// <c>add(Scalar)</c>) calls <c>add(b, 1)</c>, converting the alpha 1 to a temporary Scalar that nothing
/// holds during the native call; a collection then (any thread allocating) lets its finalizer free it while libtorch
/// reads it ("toFloat", c10/core/Scalar.h:140). Held in a static field, this one stays reachable for the process's
/// lifetime, and libtorch only reads it, so threads can share it. The torch-path forwards (every family's residual sums,
/// the encoders' embedding and attention sums) and the tests' reference forwards use these for every tensor sum; the
/// same integer alpha 1 as the operator, so the arithmetic is unchanged. (<c>a - b</c> of two tensors takes no alpha:
/// safe as written.) The same hazard for other implicit Scalars (a literal exponent, a scale, −inf in masked_fill) is
/// met at each call by an explicit <c>using Scalar</c> held across it. Upstream: dotnet/TorchSharp#1434, #1496.
/// </summary>
public static class HeldAlpha
{
    static readonly Scalar One = 1.ToScalar();

    public static Tensor Plus(this Tensor a, Tensor b) => a.add(b, One);

    public static Tensor Plus(this Tensor a, Scalar b) => a.add(b, One);
}
