using TorchSharp;
using static TorchSharp.torch;

namespace Pargs.Models;

/// <summary>
/// Tensor arithmetic with a .NET number whose Scalar is held across the native call. WHY: TorchSharp's <c>t * 0.5</c>,
/// <c>t - 1</c>, <c>t / n</c>, <c>2.0 * t</c> and <c>arange(n)</c> convert the number (and arange's start and step) to
/// temporary Scalars that nothing holds once their handles are read; a collection during the call (any thread allocating)
/// lets the finalizer free what libtorch is reading (see <see cref="HeldAlpha"/>). Here each Scalar lives in a
/// <c>using</c> until the call returns. The long overloads keep an integer Scalar (as the int literal did: an int64
/// tensor minus 1 stays int64), the double ones a floating Scalar (a float converts exactly): the same values libtorch
/// read before, so the arithmetic is unchanged. <c>Pargs.Tests.Models.HeldScalarsTests</c> scans the built assemblies for
/// any call that still makes an unheld Scalar.
/// </summary>
public static class HeldScalars
{
    public static Tensor Times(this Tensor t, double value)
    {
        using var s = value.ToScalar();
        return t.mul(s);
    }

    public static Tensor Times(this Tensor t, long value)
    {
        using var s = value.ToScalar();
        return t.mul(s);
    }

    public static Tensor DividedBy(this Tensor t, double value)
    {
        using var s = value.ToScalar();
        return t.div(s);
    }

    public static Tensor DividedBy(this Tensor t, long value)
    {
        using var s = value.ToScalar();
        return t.div(s);
    }

    public static Tensor Plus(this Tensor t, double value)
    {
        using var s = value.ToScalar();
        return t.Plus(s);
    }

    public static Tensor Plus(this Tensor t, long value)
    {
        using var s = value.ToScalar();
        return t.Plus(s);
    }

    public static Tensor Minus(this Tensor t, double value)
    {
        using var s = value.ToScalar();
        return t.sub(s);
    }

    public static Tensor Minus(this Tensor t, long value)
    {
        using var s = value.ToScalar();
        return t.sub(s);
    }

    /// <summary>t to an integer power, as <c>t.pow(n)</c> (and <c>t.square()</c>, which is <c>pow(2)</c>).</summary>
    public static Tensor Pow(this Tensor t, long exponent)
    {
        using var s = exponent.ToScalar();
        return t.pow(s);
    }

    /// <summary>0, 1, …, count − 1, as <c>arange(count)</c>; its start and step held too (TorchSharp's one-argument
    /// arange makes them as temporaries).</summary>
    public static Tensor Arange(long count, ScalarType dtype, Device? device = null)
    {
        using Scalar start = 0L.ToScalar(), stop = count.ToScalar(), step = 1L.ToScalar();
        return arange(start, stop, step, dtype, device);
    }
}
