using Pargs.Rewards;

namespace Pargs.Experiments;

public sealed partial class DemoPipeline
{
    (IReadOnlyList<string>, Dictionary<string, double>) RewardModelsStage(string dir, IProgress<DemoProgress>? progress)
        => throw new PargsException("reward-model training is not in this build yet");

    (IRewardModel? Full, IRewardModel? Partial) LoadRewardModels()
        => throw new PargsException("reward-model training is not in this build yet");
}
