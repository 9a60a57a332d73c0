using Pargs.Rewards;
using static Pargs.Decoding.Methods.MethodParameter;

namespace Pargs.Decoding.Methods;

/// <summary>
/// The registry of decoding methods, by name. The CLI, the demo, the experiment config and the server find
/// methods here; the shared loop knows no method names. Adding a method = its file under Methods/ (options
/// record + rule or search) + one line in <see cref="registered"/>.
/// </summary>
public static class DecodingMethods
{
    public static readonly DecodingMethod Greedy = new("greedy", "argmax of the base LM",
        RewardUse.None, null, samples: false, [], GreedyOptions.From);
    public static readonly DecodingMethod TopK = new("topk", "sample from the base LM's k most likely tokens",
        RewardUse.None, null, samples: true, [K, Temperature], TopKOptions.From);
    public static readonly DecodingMethod TopP = new("topp", "nucleus sampling: the smallest set of tokens whose probability reaches p",
        RewardUse.None, null, samples: true, [MethodParameter.TopP, Temperature], TopPOptions.From);
    public static readonly DecodingMethod BestOfN = new("best-of-n", "N top-k samples per prompt; a full-sequence reward model picks the best",
        RewardUse.WholeSequence, RewardObjective.Full, samples: true, [K, N, Temperature], BestOfNOptions.From);
    public static readonly DecodingMethod Args = new("args", "ARGS: argmax over top-k of log p + w·r, full-sequence reward model",
        RewardUse.Tokenwise, RewardObjective.Full, samples: false, [K, W], ArgsOptions.From);
    public static readonly DecodingMethod Pargs = new("pargs", "PARGS: sample from softmax((log p + w·r)/T) over top-k, partial-sequence reward model",
        RewardUse.Tokenwise, RewardObjective.Partial, samples: true, [K, W, Temperature], PargsOptions.From);
    public static readonly DecodingMethod PargsGreedy = new("pargs-g", "PARGS-G: argmax of the PARGS score",
        RewardUse.Tokenwise, RewardObjective.Partial, samples: false, [K, W], PargsGreedyOptions.From);

    public static readonly DecodingMethod Farma = new("farma", "FaRMA: sample from softmax((log p + w·r)/T) over the top-k of the whole vocabulary, r from a vocabulary-head reward model (one RM token per step)",
        RewardUse.Vocabulary, RewardObjective.Farma, samples: true, [K, W, Temperature], FarmaOptions.From);
    public static readonly DecodingMethod FarmaGreedy = new("farma-g", "FaRMA-G: argmax of the FaRMA score log p + w·r over the whole vocabulary",
        RewardUse.Vocabulary, RewardObjective.Farma, samples: false, [K, W], FarmaGreedyOptions.From);
    public static readonly DecodingMethod GenArm = new("genarm", "GenARM: sample from π_base · π_r^w over the whole vocabulary, π_r an autoregressive reward model",
        RewardUse.Vocabulary, RewardObjective.Genarm, samples: true, [W, Temperature], GenArmOptions.From);

    public static readonly DecodingMethod ControlledDecoding = new("cd", "blockwise controlled decoding: K sampled continuations of M tokens per block, a prefix scorer (partial RM) keeps the best",
        RewardUse.Prefix, RewardObjective.Partial, samples: true, [Continuations, BlockLength, Temperature], ControlledDecodingOptions.From);
    public static readonly DecodingMethod Cards = new("cards", "CARDS: segments end at high next-token entropy and are accepted with probability min(1, exp((r − τ)/β)), τ rising to --target-reward",
        RewardUse.Prefix, RewardObjective.Partial, samples: true, [K, Temperature, TargetReward], CardsOptions.From);

    static readonly List<DecodingMethod> registered = [Greedy, TopK, TopP, BestOfN, Args, Pargs, PargsGreedy, Farma, FarmaGreedy, GenArm, ControlledDecoding, Cards];

    /// <summary>Every registered method, in registration order.</summary>
    public static IReadOnlyList<DecodingMethod> All => registered;

    /// <summary>Adds a method (a library user's own, or a test's); its name must be new.</summary>
    public static void Register(DecodingMethod method)
    {
        lock (registered)
        {
            if (registered.Any(m => m.Name == method.Name)) throw new ArgumentException($"a decoding method named \"{method.Name}\" is already registered");
            registered.Add(method);
        }
    }

    /// <summary>The method of that name (case and surrounding spaces ignored), or a message listing the known ones.</summary>
    public static DecodingMethod Parse(string name)
        => registered.FirstOrDefault(m => m.Name == name.Trim().ToLowerInvariant())
           ?? throw new PargsException($"unknown method \"{name}\" (expected one of {string.Join(", ", registered.Select(m => m.Name))})");

    /// <summary>The names for help texts: "greedy | topk | …".</summary>
    public static string Names => string.Join(" | ", registered.Select(m => m.Name));
}
