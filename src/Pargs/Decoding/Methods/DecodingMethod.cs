using Pargs.Rewards;

namespace Pargs.Decoding.Methods;

/// <summary>How a method consults a reward model.</summary>
public enum RewardUse
{
    /// <summary>No reward model (greedy, top-k, top-p).</summary>
    None,
    /// <summary>Every candidate token of every step is scored (ARGS, PARGS, PARGS-G).</summary>
    Tokenwise,
    /// <summary>Whole samples are scored once they are finished (Best-of-N).</summary>
    WholeSequence,
    /// <summary>
    /// The reward model's head over the whole vocabulary is read at every step, one reward-model token per row
    /// and step (FaRMA, GenARM: a <see cref="Rewards.VocabularyRewardModel"/>).
    /// </summary>
    Vocabulary,
    /// <summary>Prefixes several tokens long are scored as they grow (blockwise controlled decoding, CARDS).</summary>
    Prefix,
}

/// <summary>A setting a user can give a method (CLI option, experiment-config key, request field).</summary>
public enum MethodParameter { K, W, N, Temperature, TopP, Continuations, BlockLength, TargetReward }

/// <summary>
/// A decoding method as the registry knows it: its name, what it needs, which settings it reads, and how to
/// build its options from what a user gave. The method's own behaviour lives in its options record
/// (<see cref="IMethodOptions"/>) and the rule or search it creates — one file per method under Methods/.
/// Everything that asks "which methods need a reward model, which sample, which read -w" asks this object,
/// so adding a method is its file plus one line in <see cref="DecodingMethods"/>.
/// </summary>
public sealed class DecodingMethod
{
    readonly Func<MethodSettings, IMethodOptions> create;

    public DecodingMethod(string name, string summary, RewardUse rewardUse, RewardObjective? guideObjective, bool samples,
        IReadOnlyCollection<MethodParameter> parameters, Func<MethodSettings, IMethodOptions> create)
    {
        Name = name;
        Summary = summary;
        RewardUse = rewardUse;
        GuideObjective = guideObjective;
        Samples = samples;
        Parameters = parameters;
        this.create = create;
    }

    /// <summary>The name users type: <c>pargs</c>, <c>best-of-n</c>…</summary>
    public string Name { get; }
    public string Summary { get; }
    public RewardUse RewardUse { get; }
    /// <summary>
    /// The objective of the reward model the method is defined with (ARGS and Best-of-N: a full-sequence RM;
    /// PARGS, PARGS-G: a partial one) — what the demo and experiments train for it. Null without a reward model.
    /// </summary>
    public RewardObjective? GuideObjective { get; }
    /// <summary>Whether the method draws at random (the rest are deterministic).</summary>
    public bool Samples { get; }
    /// <summary>The settings the method reads; a user giving another one is told it has no effect.</summary>
    public IReadOnlyCollection<MethodParameter> Parameters { get; }

    public bool NeedsRewardModel => RewardUse != RewardUse.None;
    /// <summary>Whether the shared loop opens the reward model's scorer for the rows (tokenwise candidates, or the vocabulary head).</summary>
    public bool IsTokenwiseGuided => RewardUse is RewardUse.Tokenwise or RewardUse.Vocabulary;
    public bool Reads(MethodParameter parameter) => Parameters.Contains(parameter);

    /// <summary>The method's options from a user's settings (settings it does not read are ignored here; see <see cref="Unread"/>).</summary>
    public IMethodOptions Options(MethodSettings settings) => create(settings);

    /// <summary>The settings a user gave that this method does not read (a CLI refuses them).</summary>
    public IEnumerable<MethodParameter> Unread(MethodSettings given) => given.Given.Where(p => !Reads(p));

    /// <summary>The reward model the method consults, or null when it uses none; a guided method without one is an error.</summary>
    public IRewardModel? RewardModelFor(IRewardModel? rm)
    {
        if (!NeedsRewardModel) return null;
        return rm ?? throw new PargsException($"{Name} needs a reward model (--reward-model)");
    }

    public override string ToString() => Name;
}
