namespace Pargs.Rewards.Gold;

/// <summary>
/// An encoder classifier as the held-out judge of an evaluation (`pargs eval --reward-model`, `pargs experiment`'s
/// evaluate.reward.reward_model): the reward of (prompt, continuation) read as the model's input setting says, the
/// number its reward label picks. It must not be the model that guided the generations.
/// </summary>
public sealed class EncoderGoldReward(EncoderRewardModel model) : IGoldReward, IDisposable
{
    public string Name { get; } = "rm:" + Path.GetFileName(Path.TrimEndingDirectorySeparator(model.Source)) + (model.Label.NumLabels > 1 ? ":" + model.Label.Name : "");

    public double Score(string prompt, string continuation) => model.Score([(prompt, continuation)])[0];

    public void Dispose() => model.Dispose();
}
