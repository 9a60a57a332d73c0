using Pargs.Decoding;

namespace Pargs.Server;

/// <summary>
/// Where a /v1/rewards pass spends its thread's CPU (PARGS_SERVE_PROFILE=1), phase by phase, summed over passes: what
/// <see cref="StepPhaseTimes"/> is for the generation worker's decoder steps. WHY a split: a remote steering client's
/// reward pass costs the reward worker more per token than the local scorer's whole candidate scoring, and only a
/// split says whether that is the model's forward or the work around it (finding and joining prefixes, keeping them).
/// Written by the thread that runs the passes; read from /metrics (doubles, a profile's precision).
/// </summary>
sealed class RewardPassTimes
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

    public static readonly IReadOnlyList<Phase> Phases = Enum.GetValues<Phase>();

    readonly long[] cpuNanoseconds = new long[Phases.Count];

    /// <summary>Adds the thread CPU time since <paramref name="start"/> to <paramref name="phase"/> and moves <paramref name="start"/> to now.</summary>
    public void Add(Phase phase, ref long start)
    {
        long now = ThreadCpuClock.Nanoseconds();
        Interlocked.Add(ref cpuNanoseconds[(int)phase], now - start);
        start = now;
    }

    public double CpuSeconds(Phase phase) => Interlocked.Read(ref cpuNanoseconds[(int)phase]) * 1e-9;
}
