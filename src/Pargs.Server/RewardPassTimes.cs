using Pargs.Decoding;

namespace Pargs.Server;

/// <summary>
/// Where a /v1/rewards pass spends its thread's time (PARGS_SERVE_PROFILE=1), phase by phase, summed over passes
/// (<see cref="PhaseTimes{TPhase}"/>): what <see cref="StepPhaseTimes"/> is for the generation worker's decoder steps.
/// WHY a split: a remote steering client's reward pass costs the reward worker more per token than the local scorer's
/// whole candidate scoring, and only a split says whether that is the model's forward or the work around it (finding and
/// joining prefixes, keeping them).
/// </summary>
sealed class RewardPassTimes : PhaseTimes<RewardPassTimes.Phase>
{
    /// <summary>The phases, in the order a pass runs them.</summary>
    public enum Phase
    {
        /// <summary>Each request's shared prefix: the prefix cache's and the kept siblings' lookups.</summary>
        Find,
        /// <summary>The prefixes as rows of the pass's cache: kept rows gathered, the chosen candidates appended (or a prefill).</summary>
        Join,
        /// <summary>The reward model's forward over the candidates and the score head.</summary>
        Forward,
        /// <summary>What the next request reads: the candidates' slots kept, the prefixes into the prefix cache.</summary>
        Keep,
    }
}
