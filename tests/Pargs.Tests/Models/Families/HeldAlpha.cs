using TorchSharp;
using static TorchSharp.torch;

namespace Pargs.Tests.Models.Families;

/// <summary>
/// Tensor addition with an alpha Scalar that is never finalized. WHY: TorchSharp's <c>a + b</c> (and
/// <c>add(Scalar)</c>) calls <c>add(b, 1)</c>, converting the alpha 1 to a temporary Scalar that nothing
/// holds during the native call; a collection then (any thread allocating) lets its finalizer free it while libtorch
/// reads it ("toFloat", c10/core/Scalar.h:140). Held in a static field, this one stays reachable for the process's
/// lifetime, and libtorch only reads it, so threads can share it. The reference forwards use these for every
/// tensor sum; the same integer alpha 1 as the operator, so the arithmetic is unchanged. (<c>a - b</c> of two
/// tensors takes no alpha: safe as written.)
/// </summary>
static class HeldAlpha
{
    static readonly Scalar One = 1.ToScalar();

    public static Tensor Plus(this Tensor a, Tensor b) => a.add(b, One);

    public static Tensor Plus(this Tensor a, Scalar b) => a.add(b, One);
}
