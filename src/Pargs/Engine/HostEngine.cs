using Pargs.Decoding;
using Pargs.Rewards;

namespace Pargs.Engine;

/// <summary>
/// The torch-free local engine: <see cref="HostSession"/>s over a <see cref="HostLanguageModel"/>. For methods that read
/// only the LM (greedy, top-k, top-p); a reward model's scorer is torch's (<see cref="LocalEngine"/>), so it is refused here.
/// </summary>
public sealed class HostEngine(HostLanguageModel lm) : LanguageModelEngine
{
    public override LanguageModelInfo Info => lm.Info;

    public override bool UsesTorch => false;

    public override void CheckFits(IRewardModel? rm, DecodingOptions options, int prompts, int longestPrompt)
        => DecodingMemory.Check(lm.Config, rm?.Config, options, prompts, longestPrompt, lmCache: lm.KvCacheType);

    public override ILanguageModelSession OpenSession(int capacity) => new HostSession(lm, capacity);

    public override ICandidateScorer OpenScorer(IRewardModel rm, int candidates, int capacity, CandidateScoringCounts counts)
        => throw new PargsException($"{lm.Source}: the host engine decodes methods without a reward model; load the model with its torch engine (LanguageModelEngine.Cached) to score candidates");
}
