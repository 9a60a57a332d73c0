namespace Pargs.Models.Cpu;

/// <summary>
/// Reads a tuning knob from an environment variable (PARGS_WORKER_SPIN_US, PARGS_MATMUL_MIN_WORK, PARGS_SERIAL_WORK, PARGS_GEMM_MIN_ROWS, PARGS_KEPT_MIN_ROWS, PARGS_GEMM_AVX2) for
/// A/B runs of one build. WHY a helper: the knobs are read in static initializers, where an exception would surface as a
/// TypeInitializationException on the first kernel call, far from the typo; and an unchecked huge value would overflow the
/// arithmetic that uses it. So: unset gives the default, an unparsable value the default with one warning on stderr naming
/// the variable, and a value outside [min, max] is clamped (also with a warning).
/// </summary>
internal static class TuningVariable
{
    static readonly HashSet<string> warned = [];

    /// <summary><paramref name="name"/>'s value; <paramref name="fallbackText"/> names the fallback in the warning when its number means something else (e.g. "the width-dependent thresholds").</summary>
    public static long Read(string name, long fallback, long min, long max, string? fallbackText = null)
        => Parse(name, Environment.GetEnvironmentVariable(name), fallback, min, max, Warn, fallbackText);

    /// <summary>The value <paramref name="text"/> of <paramref name="name"/> gives; <paramref name="warn"/> gets each problem's line.</summary>
    internal static long Parse(string name, string? text, long fallback, long min, long max, Action<string, string> warn, string? fallbackText = null)
    {
        if (string.IsNullOrWhiteSpace(text)) return fallback;
        if (!long.TryParse(text.Trim(), System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out long value))
        {
            warn(name, $"pargs: warning: {name}=\"{text}\" is not an integer; using {fallbackText ?? fallback.ToString(System.Globalization.CultureInfo.InvariantCulture)}");
            return fallback;
        }
        if (value < min || value > max)
        {
            long clamped = Math.Clamp(value, min, max);
            warn(name, $"pargs: warning: {name}={value} is outside {min}..{max}; using {clamped}");
            return clamped;
        }
        return value;
    }

    static void Warn(string name, string line)
    {
        lock (warned)
            if (!warned.Add(name)) return;
        Console.Error.WriteLine(line);
    }
}
