using Pargs.Checkpoints;
using Pargs.Models.Encoders;

namespace Pargs.Rewards.Gold;

/// <summary>The gold rewards a reward-model folder can give: an encoder classifier, or a causal reward model Pargs trained.</summary>
public static class GoldRewards
{
    /// <summary>
    /// The judge in <paramref name="folder"/>: an encoder (config.json model_type bert, roberta, distilbert, deberta-v2)
    /// read with <paramref name="rewardLabel"/>, else a causal …ForSequenceClassification (one label; a label is refused).
    /// </summary>
    public static IGoldReward FromFolder(string folder, string? rewardLabel = null)
    {
        if (IsEncoderFolder(folder)) return new EncoderGoldReward(EncoderRewardModel.Load(folder, rewardLabel));
        if (rewardLabel is not null)
            throw new PargsException($"{folder}: --reward-label applies to encoder classifiers; this reward model has one output, its reward");
        return new Experiments.RewardModelJudge(RewardModel.Load(folder));
    }

    /// <summary>True when <paramref name="folder"/> holds a config.json of an encoder model type (a pickle-only folder is refused here).</summary>
    public static bool IsEncoderFolder(string folder)
    {
        EncoderCheckpoint.RefusePickle(folder);
        string config = Path.Combine(folder, HuggingFaceFolder.ConfigFile);
        return Directory.Exists(folder) && File.Exists(config) && EncoderConfigReader.IsEncoder(config);
    }
}
