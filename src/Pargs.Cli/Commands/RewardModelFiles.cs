using Pargs.Models;
using Pargs.Rewards;

namespace Pargs.Cli.Commands;

/// <summary>Loads a reward-model folder for the commands that take --reward-model.</summary>
public static class RewardModelFiles
{
    /// <summary>
    /// A reward model is always a folder, so a missing path gets that said, not the base-LM formats
    /// (.gguf, llama2.c .bin) the checkpoint loader would list.
    /// </summary>
    public static RewardModel Load(string path, bool storedPrecision = false)
    {
        bool gguf = storedPrecision && File.Exists(path) && Path.GetExtension(path).Equals(".gguf", StringComparison.OrdinalIgnoreCase);
        if (!Directory.Exists(path) && !gguf)
            throw new PargsException($"{path}: reward model folder not found (expected a Hugging Face folder with config.json and " +
                                     "model.safetensors holding score.weight, as `pargs train-rm` writes)");
        // storedPrecision: a Llama-family reward model is mapped and decoded as stored (RewardModel.LoadForInference).
        var rm = storedPrecision ? RewardModel.LoadForInference(path) : RewardModel.Load(path);
        if (rm.StoredWeights is null) ColumnMajor.ApplyForDecoding(rm, rm.Config); // decoding only, never trained here
        Pargs.Checkpoints.StartupPages.Release(); // as the LM's load does (ModelOptions.LoadLanguageModel)
        return rm;
    }

    /// <summary>
    /// Any reward model decoding can use: an encoder classifier folder (BERT, RoBERTa, DistilBERT, DeBERTa-v2/v3) read
    /// with <paramref name="rewardLabel"/>; a FaRMA / GenARM one with a vocabulary head, recognised by config.json's
    /// <c>pargs_objective</c>; or a scalar-head causal one (<see cref="Load"/>). Only an encoder has labels to choose.
    /// </summary>
    public static IRewardModel LoadForDecoding(string path, string? rewardLabel = null, bool storedPrecision = false)
    {
        if (Pargs.Rewards.Gold.GoldRewards.IsEncoderFolder(path)) return EncoderRewardModel.Load(path, rewardLabel);
        if (rewardLabel is not null)
            throw new PargsException($"{path}: --reward-label applies to encoder classifiers; this reward model has one output, its reward");
        if (Directory.Exists(path) && RewardModel.ReadObjective(path) is { } objective && objective.HasVocabularyHead())
        {
            var rm = VocabularyRewardModel.Load(path);
            ColumnMajor.ApplyForDecoding(rm.Model, rm.Config);
            return rm;
        }
        return Load(path, storedPrecision);
    }

    /// <summary>The --reward-label option (which label of a multi-label classifier is the reward).</summary>
    public static System.CommandLine.Option<string> RewardLabelOption() => new("--reward-label")
    {
        Description = "Label of an encoder classifier whose log-probability is the reward (log-softmax over its labels; a one-label head gives its logit); default: the config's pargs_reward_label",
    };
}
