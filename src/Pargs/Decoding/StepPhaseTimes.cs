using static TorchSharp.torch;

namespace Pargs.Decoding;

/// <summary>
/// Where a <see cref="ContinuousDecoder"/>'s steps spend their time, phase by phase, summed over steps (<see cref="PhaseTimes{TPhase}"/>),
/// with the steps and the rows they advanced. A profiling aid: a server turns it on with PARGS_SERVE_PROFILE=1 and
/// reports the sums as metrics; off (null), a step reads no clock.
/// </summary>
public sealed class StepPhaseTimes : PhaseTimes<StepPhaseTimes.Phase>
{
    /// <summary>The phases, in the order a step runs them.</summary>
    public enum Phase
    {
        /// <summary>Joining rows' prompts through the LM (prefill, prefix-cache lookups, KV-cache concatenation).</summary>
        JoinLm,
        /// <summary>Joining rows' prompts through the reward model's scorer.</summary>
        JoinRm,
        /// <summary>The method's rule: top-k, combine, sample — with the reward model's scoring and commit inside it (below).</summary>
        Choose,
        /// <summary>The reward model's forward over every row's k candidates (inside <see cref="Choose"/>).</summary>
        RmScore,
        /// <summary>Extending the reward model's prefixes by the chosen candidates (inside <see cref="Choose"/>).</summary>
        RmCommit,
        /// <summary>Copying the raw distributions of rows that report log-probabilities.</summary>
        LogProbs,
        /// <summary>Accepting each row's token: detokenizing, stop strings, handing new text to its request.</summary>
        Accept,
        /// <summary>Finished rows leaving (LM and RM caches compacted; the LM's kept for the prefix cache).</summary>
        Leave,
        /// <summary>The LM's batched forward of the chosen tokens.</summary>
        LmStep,
        /// <summary>Outside the decoder, on the server's worker: starting requests that arrived.</summary>
        Admit,
    }

    /// <summary>Steps timed and rows they advanced.</summary>
    public long Steps { get; private set; }
    public long RowSteps { get; private set; }

    public void CountStep(int rows)
    {
        Steps++;
        RowSteps += rows;
    }

    /// <summary>Times <paramref name="inner"/>'s calls under the reward-model phases.</summary>
    internal ICandidateScorer Timed(ICandidateScorer inner) => new TimedScorer(inner, this);

    sealed class TimedScorer(ICandidateScorer inner, StepPhaseTimes times) : ICandidateScorer
    {
        public int Rows => inner.Rows;

        public void AddRows(IReadOnlyList<int[]> prompts)
        {
            var start = Now();
            inner.AddRows(prompts);
            times.Add(Phase.JoinRm, ref start);
        }

        public void KeepRows(int[] rows) => inner.KeepRows(rows); // timed with the LM's under Leave

        public float[][] Score(Tensor candidates, IReadOnlyList<bool> active)
        {
            var start = Now();
            try { return inner.Score(candidates, active); }
            finally { times.Add(Phase.RmScore, ref start); }
        }

        public void Commit(int[] chosen)
        {
            var start = Now();
            inner.Commit(chosen);
            times.Add(Phase.RmCommit, ref start);
        }

        public void Dispose() => inner.Dispose();
    }
}
