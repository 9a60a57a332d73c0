namespace Pargs.Decoding.Methods;

/// <summary>
/// One method's options record (TRL-style: the settings beside the algorithm they configure). Each method
/// file declares one, with the method's defaults, its validation and what it builds: a per-step
/// <see cref="TokenRule"/> that the shared loop runs, or a whole-sample <see cref="ISequenceSearch"/>.
/// </summary>
public interface IMethodOptions
{
    /// <summary>The registered method these options configure.</summary>
    DecodingMethod Method { get; }

    /// <summary>Throws a <see cref="PargsException"/> naming the option that cannot work with this vocabulary.</summary>
    void Validate(int vocabSize);

    /// <summary>k as generation records report it (null where the method has no k).</summary>
    int? RecordK { get; }
    /// <summary>w as generation records report it (null where the method has no reward weight).</summary>
    double? RecordW { get; }
}

/// <summary>Options of a method that picks one token per step: the shared loop (<see cref="TokenwiseDecoder"/>) runs its rule.</summary>
public interface ITokenwiseOptions : IMethodOptions
{
    TokenRule CreateRule();
}

/// <summary>Options of a method that searches over whole samples (Best-of-N) and uses the loop as a sampler.</summary>
public interface ISearchOptions : IMethodOptions
{
    ISequenceSearch CreateSearch();
}

/// <summary>Checks shared by the options records; each message names the user-facing option.</summary>
internal static class OptionChecks
{
    public static void K(int k, int vocabSize)
    {
        if (k <= 0) throw new PargsException($"-k must be at least 1, got {k}");
        if (k > vocabSize) throw new PargsException($"-k {k} is larger than the vocabulary ({vocabSize} tokens)");
    }

    public static void Temperature(double temperature, DecodingMethod method)
    {
        if (!(temperature > 0) || !double.IsFinite(temperature))
            throw new PargsException($"--temperature must be positive for {method.Name}, got {temperature}");
    }

    public static void W(double w)
    {
        if (!double.IsFinite(w)) throw new PargsException($"-w must be a finite number, got {w}");
    }
}
