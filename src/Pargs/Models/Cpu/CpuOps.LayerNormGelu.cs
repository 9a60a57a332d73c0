using System.Runtime.CompilerServices;

namespace Pargs.Models.Cpu;

/// <summary>The vector loops of the families whose layers are not Llama's: LayerNorm with a bias, and GELU.</summary>
public static unsafe partial class CpuOps
{
    /// <summary>
    /// torch's LayerNorm of one row: y = (x − mean) / √(var + eps) · weight + bias, the biased variance, sums in double
    /// (a 2-pass mean/variance: the one-pass form loses digits when the mean is large against the spread).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void LayerNorm(float* x, float* weight, float* bias, double eps, float* y, int n)
    {
        double sum = 0;
        for (int i = 0; i < n; i++) sum += x[i];
        double mean = sum / n, squares = 0;
        for (int i = 0; i < n; i++) { double d = x[i] - mean; squares += d * d; }
        double scale = 1.0 / Math.Sqrt(squares / n + eps);
        for (int i = 0; i < n; i++) y[i] = (float)((x[i] - mean) * scale) * weight[i] + (bias == null ? 0f : bias[i]);
    }

    /// <summary>
    /// GELU in place: the exact x·Φ(x) (torch's "gelu", what GPT-NeoX's hidden_act "gelu" means) or its tanh
    /// approximation (gelu_new / gelu_pytorch_tanh), each computed in double and rounded once.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Gelu(float* x, int n, bool exact)
    {
        const double sqrt2OverPi = 0.7978845608028654, inverseSqrt2 = 0.7071067811865476;
        for (int i = 0; i < n; i++)
        {
            double v = x[i];
            x[i] = (float)(exact ? 0.5 * v * Erfc(-v * inverseSqrt2) : 0.5 * v * (1 + Math.Tanh(sqrt2OverPi * (v + 0.044715 * v * v * v))));
        }
    }

    /// <summary>
    /// GeGLU's gate in place: gate = gelu_tanh(gate) · up (Gemma's down(gelu_pytorch_tanh(gate(x)) · up(x))), the GELU
    /// as <see cref="Gelu"/> computes it, the product in float32 as torch's.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void GeluTanhMul(float* gate, float* up, int n)
    {
        Gelu(gate, n, exact: false);
        for (int i = 0; i < n; i++) gate[i] *= up[i];
    }

    /// <summary>
    /// The complementary error function to a relative error below 1.2e-7 everywhere: erfc(z) = t·exp(−z² + P(t)),
    /// t = 1/(1 + |z|/2), P the degree-9 Chebyshev fit of Press et al., Numerical Recipes §6.2 (.NET has no erf).
    /// </summary>
    static double Erfc(double z)
    {
        double a = Math.Abs(z), t = 1 / (1 + 0.5 * a);
        double p = -1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807
                 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
        double r = t * Math.Exp(-a * a + p);
        return z >= 0 ? r : 2 - r;
    }
}
