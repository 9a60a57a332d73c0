using Pargs.Rewards;
using Pargs.Rewards.Gold;
using TorchSharp;
using static TorchSharp.torch;

namespace Pargs.Experiments;

/// <summary>
/// A trained reward model as the judge of an evaluation (`pargs experiment`, evaluate.reward = {"reward_model": DIR}):
/// the reward of prompt + continuation at its last token. Use a model that guided nothing in the run — otherwise a
/// method can win by fooling its own guide.
/// </summary>
public sealed class RewardModelJudge(RewardModel model) : IGoldReward, IDisposable
{
    public string Name { get; } = "rm:" + Path.GetFileName(Path.TrimEndingDirectorySeparator(model.Source));

    public double Score(string prompt, string continuation)
    {
        var tokenizer = model.Tokenizer ?? throw new PargsException($"{model.Source}: the reward model has no tokenizer");
        int[] ids = tokenizer.Encode(prompt + continuation, addBos: true);
        if (ids.Length > model.Config.MaxPositions) ids = ids[^model.Config.MaxPositions..]; // keep the end: the reward is read there
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var input = tensor(ids.Select(i => (long)i).ToArray()).unsqueeze(0);
        return model.SequenceRewards(input, ones_like(input, dtype: ScalarType.Bool)).to(ScalarType.Float64).item<double>();
    }

    public void Dispose() => model.Dispose();
}
