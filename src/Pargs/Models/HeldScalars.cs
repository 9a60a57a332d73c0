using TorchSharp;
using static TorchSharp.torch;

namespace Pargs.Models;

/// <summary>
/// Tensor arithmetic whose Scalars are held across the native call. WHY: TorchSharp 0.107 frees a Scalar in its
/// finalizer and holds none during the call, and its operators make temporary ones — <c>a + b</c>'s alpha 1 (it calls
/// <c>add(b, 1)</c>), the number of <c>t * 0.5</c>, <c>t - 1</c>, <c>t / n</c>, <c>2.0 * t</c>, arange's start and step —
/// that nothing references once their handles are read; a collection then (any thread allocating) lets the finalizer free
/// what libtorch is reading ("toFloat", c10/core/Scalar.h:140; "Unknown scalar type"). Sums of tensors use one alpha held
/// in a static field for the process's lifetime (libtorch only reads it, so threads share it); arithmetic with a number
/// keeps its Scalar in a <c>using</c> until the call returns. The long overloads keep an integer Scalar (as the int literal
/// did: an int64 tensor minus 1 stays int64), the double ones a floating Scalar (a float converts exactly), and sums the
/// integer alpha 1 of the operator: the same values libtorch read before, so the arithmetic is unchanged. (<c>a - b</c> of
/// two tensors takes no alpha: safe as written.) <c>Pargs.Tests.Models.HeldScalarsTests</c> scans the built assemblies for
/// any call that still makes an unheld Scalar. Upstream: dotnet/TorchSharp#1434, #1496.
/// </summary>
public static class HeldScalars
{
    static readonly Scalar One = 1.ToScalar();

    /// <summary>a + b, as the operator (alpha 1), the alpha held.</summary>
    public static Tensor Plus(this Tensor a, Tensor b) => a.add(b, One);

    /// <summary>a + b for a Scalar the caller holds, as <c>add(b)</c> (alpha 1), the alpha held.</summary>
    public static Tensor Plus(this Tensor a, Scalar b) => a.add(b, One);

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
