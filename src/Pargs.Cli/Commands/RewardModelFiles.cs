using Pargs.Rewards;

namespace Pargs.Cli.Commands;

/// <summary>Loads a reward-model folder for the commands that take --reward-model.</summary>
public static class RewardModelFiles
{
    public static IRewardModel Load(string path) => RewardModel.Load(path);
}
