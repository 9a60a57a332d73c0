using static TorchSharp.torch;

namespace Pargs.Rewards;

/// <summary>
/// Which number of a classifier's logits is the reward. A one-label head (a regression or Bradley–Terry reward
/// model) gives its logit. A multi-label head gives the <b>log-probability</b> of the chosen label: its logit minus
/// the log-sum-exp of all logits (log-softmax over the labels) — for two labels this is −log(1 + e^(other − chosen)),
/// a monotone function of the logit difference that stays on one scale (≤ 0) for any number of labels. A
/// multi_label_classification head (independent sigmoids) gives log σ(logit) of the label. The label is named by
/// <c>--reward-label</c> or config.json's <c>pargs_reward_label</c>, matched against id2label (or given as an index).
/// </summary>
public sealed record RewardLabel(int Index, string Name, int NumLabels, bool MultiLabel)
{
    /// <summary>config.json field recording the label a saved encoder reward model is read with.</summary>
    public const string ConfigField = "pargs_reward_label";

    /// <summary>The label of <paramref name="requested"/> among <paramref name="labels"/>; a multi-label head needs one.</summary>
    public static RewardLabel Resolve(IReadOnlyList<string> labels, bool multiLabel, string? requested, string source)
    {
        string known = string.Join(", ", labels.Select((l, i) => $"{i}: {l}"));
        if (requested is null)
        {
            if (labels.Count == 1) return new RewardLabel(0, labels[0], 1, multiLabel);
            throw new PargsException(
                $"{source}: the classifier has {labels.Count} labels ({known}); say which one is the reward with --reward-label NAME " +
                $"(or \"{ConfigField}\" in its config.json)");
        }
        int index = -1;
        for (int i = 0; i < labels.Count; i++)
            if (labels[i] == requested) { index = i; break; }
        if (index < 0 && int.TryParse(requested, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int asIndex) && asIndex < labels.Count)
            index = asIndex;
        if (index < 0) throw new PargsException($"{source}: --reward-label \"{requested}\" is not one of the classifier's labels ({known})");
        return new RewardLabel(index, labels[index], labels.Count, multiLabel);
    }

    /// <summary>Logits [N, labels] → rewards [N].</summary>
    public Tensor Reward(Tensor logits)
    {
        if (NumLabels == 1) return logits.select(1, 0);
        var chosen = MultiLabel ? nn.functional.logsigmoid(logits) : nn.functional.log_softmax(logits, 1);
        return chosen.select(1, Index);
    }
}
