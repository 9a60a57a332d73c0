using Pargs.Rewards;

namespace Pargs.Decoding;

/// <summary>The decoding methods of the paper and its baselines.</summary>
public enum DecodingMethod
{
    /// <summary>Argmax of the base LM.</summary>
    Greedy,
    /// <summary>Sample from the base LM's k most likely tokens (softmax(log p / T) renormalised over them).</summary>
    TopK,
    /// <summary>Nucleus sampling: the smallest set of tokens whose probability reaches p.</summary>
    TopP,
    /// <summary>N top-k samples per prompt; a full-sequence reward model picks the best.</summary>
    BestOfN,
    /// <summary>ARGS: argmax over top-k of log p + w·r with a full-sequence reward model.</summary>
    Args,
    /// <summary>PARGS: sample from softmax((log p + w·r) / T) over top-k, with a partial-sequence reward model.</summary>
    Pargs,
    /// <summary>PARGS-G: the argmax of the PARGS score.</summary>
    PargsGreedy,
}

public static class DecodingMethods
{
    static readonly (string Name, DecodingMethod Method)[] names =
    {
        ("greedy", DecodingMethod.Greedy), ("topk", DecodingMethod.TopK), ("topp", DecodingMethod.TopP),
        ("best-of-n", DecodingMethod.BestOfN), ("args", DecodingMethod.Args), ("pargs", DecodingMethod.Pargs),
        ("pargs-g", DecodingMethod.PargsGreedy),
    };

    public static string Name(this DecodingMethod method) => names.First(n => n.Method == method).Name;

    public static DecodingMethod Parse(string text)
        => names.FirstOrDefault(n => n.Name == text.Trim().ToLowerInvariant()) is { Name: not null } hit
            ? hit.Method
            : throw new PargsException($"unknown method \"{text}\" (expected one of {string.Join(", ", names.Select(n => n.Name))})");

    /// <summary>Methods that consult a reward model at every token.</summary>
    public static bool IsTokenwiseGuided(this DecodingMethod m) => m is DecodingMethod.Args or DecodingMethod.Pargs or DecodingMethod.PargsGreedy;

    public static bool NeedsRewardModel(this DecodingMethod m) => m.IsTokenwiseGuided() || m == DecodingMethod.BestOfN;

    /// <summary>
    /// The reward model the method consults, or null for methods that use none; a guided method without one
    /// is an error.
    /// </summary>
    public static IRewardModel? RewardModelFor(this DecodingMethod m, IRewardModel? rm)
    {
        if (!m.NeedsRewardModel()) return null;
        return rm ?? throw new PargsException($"{m.Name()} needs a reward model (--reward-model)");
    }

    /// <summary>Whether the method draws at random (the rest are deterministic).</summary>
    public static bool Samples(this DecodingMethod m) => m is DecodingMethod.TopK or DecodingMethod.TopP or DecodingMethod.BestOfN or DecodingMethod.Pargs;
}
