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
    public static RewardModel Load(string path)
    {
        if (!Directory.Exists(path))
            throw new PargsException($"{path}: reward model folder not found (expected a Hugging Face folder with config.json and " +
                                     "model.safetensors holding score.weight, as `pargs train-rm` writes)");
        var rm = RewardModel.Load(path);
        ColumnMajor.ApplyForDecoding(rm, rm.Config); // decoding only, never trained here
        return rm;
    }

    /// <summary>
    /// Any reward model decoding can use: a scalar-head one (<see cref="Load"/>), or a FaRMA / GenARM one with a
    /// vocabulary head, recognised by config.json's <c>pargs_objective</c> (<see cref="RewardModels.Load"/>).
    /// </summary>
    public static IRewardModel LoadForDecoding(string path)
    {
        if (Directory.Exists(path) && RewardModel.ReadObjective(path) is { } objective && objective.HasVocabularyHead())
        {
            var rm = VocabularyRewardModel.Load(path);
            ColumnMajor.ApplyForDecoding(rm.Model, rm.Config);
            return rm;
        }
        return Load(path);
    }
}
