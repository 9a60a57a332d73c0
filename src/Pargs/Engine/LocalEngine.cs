using Pargs.Decoding;
using Pargs.Models;
using Pargs.Rewards;
using static TorchSharp.torch;

namespace Pargs.Engine;

/// <summary>
/// The local engine: a <see cref="BatchSession"/> (KV cache over ragged rows; the model family's CPU decode
/// kernel where it has one) under the model's head. The reward model scores candidates over its own cached
/// prefix (<see cref="IRewardModel.OpenScorer"/>).
/// </summary>
public sealed class LocalEngine : LanguageModelEngine
{
    readonly CausalLM lm;

    public LocalEngine(CausalLM lm) => this.lm = lm;

    public override LanguageModelInfo Info => lm.Info;

    public override void CheckFits(IRewardModel? rm, DecodingOptions options, int prompts, int longestPrompt)
        => DecodingMemory.Check(lm.Config, rm?.Config, options, prompts, longestPrompt,
                                lmCache: lm.Backbone.KvCacheType, rmCache: (rm as RewardModel)?.Backbone.KvCacheType ?? KvCacheType.F32);

    public override ILanguageModelSession OpenSession(int capacity) => new LocalSession(lm, capacity);

    public override ICandidateScorer OpenScorer(IRewardModel rm, int candidates, int capacity, CandidateScoringCounts counts)
        => rm.OpenScorer(Info, capacity + candidates, counts);

    sealed class LocalSession : ILanguageModelSession
    {
        readonly CausalLM lm;
        readonly BatchSession session;
        readonly int capacity;
        Tensor? logProbs; // [B, V] of the last step, held across steps (outside any dispose scope)

        public LocalSession(CausalLM lm, int capacity)
        {
            this.lm = lm;
            this.capacity = capacity;
            session = new BatchSession(lm.Backbone, 0, capacity);
        }

        public int Rows => session.BatchSize;

        public NextTokens AddRows(IReadOnlyList<int[]> prompts)
        {
            using var _ = no_grad();
            using var scope = NewDisposeScope();
            var added = LogProbsOf(session.AddRows(prompts, capacity));
            return Keep(logProbs is null ? added : cat([logProbs, added]));
        }

        public NextTokens Append(long[] tokens)
        {
            using var _ = no_grad();
            using var scope = NewDisposeScope();
            return Keep(LogProbsOf(session.Step(tensor(tokens))));
        }

        public NextTokens KeepRows(int[] rows)
        {
            using var scope = NewDisposeScope();
            session.SelectRows(rows.Select(r => (long)r).ToArray());
            return Keep(logProbs!.index_select(0, tensor(rows.Select(r => (long)r).ToArray())));
        }

        Tensor LogProbsOf(Tensor hidden) => DecodingSteps.LogSoftmax(lm.LogitsFromHidden(hidden));

        NextTokens Keep(Tensor next)
        {
            var old = logProbs;
            logProbs = next.DetachFromDisposeScope();
            if (!ReferenceEquals(old, logProbs)) old?.Dispose();
            return new NextTokens(logProbs);
        }

        public void Dispose()
        {
            logProbs?.Dispose();
            session.Dispose();
        }
    }
}
