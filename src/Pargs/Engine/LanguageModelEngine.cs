using Pargs.Decoding;
using Pargs.Models;
using Pargs.Rewards;

namespace Pargs.Engine;

/// <summary>
/// Where a language model runs, as decoding sees it: sessions of rows (<see cref="ILanguageModelSession"/>)
/// and the reward model's candidate scorer that goes with them. The decoding loop and the methods know only
/// this; which kernel or server computes a step is the engine's decision, made here in one place:
/// <list type="bullet">
/// <item><see cref="Cached"/>: the local engine — KV caches, batched rows, the CPU decode kernel where the
/// model family has one (<see cref="BatchSession"/>), candidates scored over the reward model's cached prefix.</item>
/// <item><see cref="Recompute"/>: the reference — no cache anywhere; every step re-reads prompt + sequence, and
/// every candidate gets its own full reward-model forward. The correctness oracle and benchmark baseline.</item>
/// </list>
/// </summary>
public abstract class LanguageModelEngine
{
    public abstract LanguageModelInfo Info { get; }

    /// <summary>A session with no rows yet; <paramref name="capacity"/> is a hint of the longest row (prompt + new tokens).</summary>
    public abstract ILanguageModelSession OpenSession(int capacity);

    /// <summary>The scorer of <paramref name="rm"/> for the rows of a session (<paramref name="candidates"/> per row and step).</summary>
    public abstract ICandidateScorer OpenScorer(IRewardModel rm, int candidates, int capacity, CandidateScoringCounts counts);

    /// <summary>
    /// Refuses a request whose memory (rows × samples × tokens of caches and logits) would not fit, before
    /// anything is allocated. An engine whose memory is elsewhere (a server) has nothing to check.
    /// </summary>
    public virtual void CheckFits(IRewardModel? rm, DecodingOptions options, int prompts, int longestPrompt) { }

    /// <summary>
    /// Whether the engine computes through torch (tensors, dispose scopes, no_grad). False for the host engine, on whose
    /// path libtorch is never loaded: the decoding loop then opens no torch scope either.
    /// </summary>
    public virtual bool UsesTorch => true;

    /// <summary>The torch-free engine on a stored-precision <paramref name="lm"/> (LM-only methods).</summary>
    public static LanguageModelEngine Host(HostLanguageModel lm) => new HostEngine(lm);

    /// <summary>The local cached engine on <paramref name="lm"/>.</summary>
    public static LanguageModelEngine Cached(CausalLM lm, PrefixCache? prefixCache = null) => new LocalEngine(lm, prefixCache);

    /// <summary>The cache-free reference engine on <paramref name="lm"/>.</summary>
    public static LanguageModelEngine Recompute(CausalLM lm) => new RecomputeEngine(lm);
}
