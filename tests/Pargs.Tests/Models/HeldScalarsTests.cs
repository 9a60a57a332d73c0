using System.Reflection;
using Pargs.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Pargs.Tests.Models;

public class HeldScalarsTests
{
    static readonly UnheldScalars Scan = new();

    /// <summary>
    /// Every torch path of the library, the CLI, the server and these tests (reference forwards run beside the rest)
    /// holds its Scalars (HeldScalars, using). Left out: this class, whose references are the unheld
    /// operators themselves (run with collections disallowed), and its fixtures.
    /// </summary>
    [Theory]
    [InlineData("Pargs")]
    [InlineData("Pargs.Cli")]
    [InlineData("Pargs.Server")]
    [InlineData("Pargs.Tests")]
    public void No_assembly_makes_a_Scalar_that_nothing_holds(string assembly)
    {
        var found = Scan.In(Assembly.Load(assembly).GetTypes().Where(t => t != typeof(HeldScalarsTests) && t.DeclaringType != typeof(HeldScalarsTests)));
        Assert.True(found.Count == 0, $"{found.Count} unheld Scalar(s) in {assembly}:\n" + string.Join("\n", found));
    }

    /// <summary>The scan itself can fail: each kind of unheld Scalar written once, in <see cref="Unheld"/>.</summary>
    [Fact]
    public void The_scan_reports_each_kind_of_unheld_Scalar()
    {
        var found = Scan.In([typeof(Unheld)]);
        foreach (var method in new[] { "SumOfTensors", "TimesADouble", "PlusAScalar", "ArangeOfACount", "Square", "ImplicitExponent", "LocalWithoutUsing", "OptimizerStep" })
            Assert.Contains(found, f => f.StartsWith($"{typeof(Unheld).FullName}.{method}:", StringComparison.Ordinal));
        Assert.Equal(8, found.Select(f => f[..f.IndexOf(':')]).Distinct().Count());
        Assert.Empty(Scan.In([typeof(Held)]));
    }

    /// <summary>Written to be found by the scan; never run.</summary>
    static class Unheld
    {
        public static Tensor SumOfTensors(Tensor a, Tensor b) => a + b;
        public static Tensor TimesADouble(Tensor a) => a * 2.0;
        public static Tensor PlusAScalar(Tensor a, Scalar s) => a + s;
        public static Tensor ArangeOfACount(long n) => arange(n);
        public static Tensor Square(Tensor a) => a.square();
        public static Tensor ImplicitExponent(Tensor a) => a.pow(3);
        public static Tensor LocalWithoutUsing(Tensor a) { var s = 3.ToScalar(); return a.pow(s); }
        public static void OptimizerStep(Tensor p) => optim.AdamW([new TorchSharp.Modules.Parameter(p)]).step();
    }

    /// <summary>The held forms of the same: the scan finds nothing here.</summary>
    static class Held
    {
        public static Tensor HeldSum(Tensor a, Tensor b) => a.Plus(b);
        public static Tensor HeldLocal(Tensor a) { using var s = 3.ToScalar(); return a.pow(s); }
        public static void HeldOptimizerStep(Tensor p) => new Pargs.Training.Optimizers.AdamW([new TorchSharp.Modules.Parameter(p)], 1e-3, 0.9, 0.999, 1e-8, 0).step();
    }

    /// <summary>Each held form computes what the operator it replaces computes, bit for bit and in the same dtype.</summary>
    [Fact]
    public void Held_forms_equal_the_operators_they_replace()
    {
        var generator = new Generator(7);
        var x = randn(new long[] { 3, 5 }, generator: generator);
        var y = randn(new long[] { 3, 5 }, generator: generator);
        var n = randint(0, 50, new long[] { 7 }, generator: generator);
        using var no = new DisallowCollections();
        AssertSame(x + y, x.Plus(y));
        AssertSame(x * 0.3, x.Times(0.3));
        AssertSame(x * 2, x.Times(2));
        AssertSame(0.7 * x, x.Times(0.7));
        AssertSame(x / 3.5, x.DividedBy(3.5));
        AssertSame(x / 3, x.DividedBy(3));
        AssertSame(x + 1e-8, x.Plus(1e-8));
        AssertSame(x + 1.0f, x.Plus(1.0));
        AssertSame(x - 1.0f, x.Minus(1.0));
        AssertSame(x.pow(2), x.Pow(2));
        AssertSame(x.square(), x.Pow(2));
        AssertSame(n - 2, n.Minus(2));
        AssertSame(n + 3, n.Plus(3));
        AssertSame(n * 2, n.Times(2));
        AssertSame(arange(9, dtype: ScalarType.Int64), HeldScalars.Arange(9, ScalarType.Int64));
        AssertSame(arange(9, dtype: ScalarType.Float64), HeldScalars.Arange(9, ScalarType.Float64));
    }

    static void AssertSame(Tensor expected, Tensor actual)
    {
        Assert.Equal(expected.dtype, actual.dtype);
        Assert.Equal(expected.shape, actual.shape);
        Assert.True(expected.to(ScalarType.Float64).equal(actual.to(ScalarType.Float64)).all().item<bool>(), "values differ");
        if (expected.dtype == ScalarType.Float32)
            Assert.Equal(expected.data<float>().ToArray().Select(BitConverter.SingleToInt32Bits), actual.data<float>().ToArray().Select(BitConverter.SingleToInt32Bits));
    }

    /// <summary>
    /// Pargs.Training.Optimizers.AdamW updates parameters and state exactly as TorchSharp's AdamW (the reference it replaces), over steps
    /// with weight decay and gradients of both signs, and saves the same optimizer.bin bytes.
    /// </summary>
    [Fact]
    public void Held_AdamW_steps_bit_for_bit_as_TorchSharps_AdamW()
    {
        using var temp = new TempDir();
        var generator = new Generator(11);
        var start = randn(new long[] { 4, 6 }, generator: generator);
        var grads = Enumerable.Range(0, 5).Select(_ => randn(new long[] { 4, 6 }, generator: generator)).ToList();
        var reference = new TorchSharp.Modules.Parameter(start.clone());
        var held = new TorchSharp.Modules.Parameter(start.clone());
        var referenceOptimizer = optim.AdamW([reference], 3e-2, 0.9, 0.95, 1e-6, 0.1);
        var heldOptimizer = new Pargs.Training.Optimizers.AdamW([held], 3e-2, 0.9, 0.95, 1e-6, 0.1);
        using (var no = new DisallowCollections())
            foreach (var g in grads)
            {
                reference.grad = g.clone();
                held.grad = g.clone();
                referenceOptimizer.step();
                heldOptimizer.step();
                Assert.Equal(reference.data<float>().ToArray(), held.data<float>().ToArray());
            }
        Assert.False(start.equal(held).all().item<bool>());
        referenceOptimizer.save_state_dict(temp.File("reference.bin"));
        heldOptimizer.save_state_dict(temp.File("held.bin"));
        Assert.Equal(File.ReadAllBytes(temp.File("reference.bin")), File.ReadAllBytes(temp.File("held.bin")));
    }

    /// <summary>
    /// No collection while the reference (TorchSharp's unheld operators) runs, so it cannot hit the hazard itself; when
    /// another test holds the process's one no-GC region, the reference runs without (a few calls: a vanishing risk).
    /// </summary>
    sealed class DisallowCollections : IDisposable
    {
        readonly bool started = TryStart();

        static bool TryStart()
        {
            try { return GC.TryStartNoGCRegion(16 << 20); }
            catch (InvalidOperationException) { return false; } // already in a no-GC region (GeluTieCase)
        }

        public void Dispose()
        {
            if (started && System.Runtime.GCSettings.LatencyMode == System.Runtime.GCLatencyMode.NoGCRegion) GC.EndNoGCRegion();
        }
    }
}
