using Pargs.Engine;
using Pargs.Rewards;
using Pargs.Rewards.Gold;
using Pargs.Tokenizers;

namespace Pargs.Training;

/// <summary>
/// The score PPO maximises, one number per finished response (TRL's reward_model call on prompt ∘ response): the
/// per-token KL penalty is added by the trainer, not here.
/// </summary>
public interface IPpoScorer
{
    /// <summary>Scores of prompt[i] ∘ response[i] (LM ids; a response ends with its EOS when it stopped on one).</summary>
    double[] Score(IReadOnlyList<int[]> prompts, IReadOnlyList<int[]> responses);
}

/// <summary>
/// A full-sequence reward model read at the response's end, exactly as Best-of-N reads it
/// (<see cref="IRewardModel.ScoreCompletions"/>: through the LM's ids, retokenized when the vocabularies differ).
/// </summary>
public sealed class RewardModelPpoScorer(IRewardModel rewardModel, LanguageModelInfo lm) : IPpoScorer
{
    public double[] Score(IReadOnlyList<int[]> prompts, IReadOnlyList<int[]> responses)
        => rewardModel.ScoreCompletions(lm, prompts, responses).Select(r => (double)r).ToArray();
}

/// <summary>A gold reward (<see cref="IGoldReward"/>) of the decoded prompt and response texts, for tests and toy tasks.</summary>
public sealed class GoldPpoScorer(IGoldReward gold, ITokenizer tokenizer) : IPpoScorer
{
    public double[] Score(IReadOnlyList<int[]> prompts, IReadOnlyList<int[]> responses)
        => prompts.Select((p, i) => gold.Score(tokenizer.Decode(p), tokenizer.Decode(responses[i]))).ToArray();
}
