using Pargs.Models;
using Pargs.Rewards;
using static TorchSharp.torch;

namespace Pargs.Decoding;

/// <summary>
/// Best-of-N: N independent top-k samples per prompt (each with its own seeded stream; the prompt is
/// repeated as N rows of one batch, prefilled together), scored whole by a full-sequence reward model at their last
/// token; the highest-reward sample is the output. A reward model with another tokenizer reads each sample's
/// text retokenized (<see cref="RewardRetokenizer.RewardIds"/>).
/// </summary>
public sealed class BestOfNDecoder
{
    readonly CausalLM lm;
    readonly IRewardModel rm;
    readonly DecodingOptions options;

    public BestOfNDecoder(CausalLM lm, IRewardModel? rm, DecodingOptions options)
    {
        this.lm = lm;
        this.rm = DecodingMethod.BestOfN.RewardModelFor(rm)!;
        this.options = options;
    }

    /// <summary>Returns, per prompt, the winning sample (its RowProgress) and its reward.</summary>
    public IReadOnlyList<(RowProgress Best, double Reward)> Run(IReadOnlyList<int[]> prompts, IReadOnlyList<int> promptIndices, DecodingContext context)
    {
        int n = options.SamplesPerPrompt;
        var sampler = new TokenwiseDecoder(lm, null, options with { Method = DecodingMethod.TopK });
        var expandedPrompts = prompts.SelectMany(p => Enumerable.Repeat(p, n)).ToList();
        var rows = promptIndices.SelectMany((pi, i) => Enumerable.Range(0, n).Select(j => new RowProgress(context, pi, j, prompts[i]))).ToList();
        sampler.Run(expandedPrompts, rows);

        var rewards = SequenceRewards(expandedPrompts, rows, context.EosId);
        // NaN is never the larger reward: without this a broken model would quietly crown every prompt's first sample.
        foreach (double reward in rewards)
            if (!double.IsFinite(reward))
                throw new PargsException($"the reward model gave a Best-of-N sample the reward {reward}: check its weights and config");
        var result = new List<(RowProgress, double)>();
        for (int i = 0; i < prompts.Count; i++)
        {
            int best = i * n;
            for (int j = i * n + 1; j < (i + 1) * n; j++)
                if (rewards[j] > rewards[best]) best = j;
            result.Add((rows[best], rewards[best]));
        }
        return result;
    }

    /// <summary>Reward of prompt + completion (+ EOS when the row ended with one), batched with right padding.</summary>
    double[] SequenceRewards(IReadOnlyList<int[]> prompts, IReadOnlyList<RowProgress> rows, int? eos)
    {
        var bridge = RewardRetokenizer.For(lm, rm); // null: LM ids go straight to the RM
        var sequences = rows.Select((r, i) =>
        {
            var lmIds = prompts[i].Concat(r.Tokens).Concat(r.FinishReason == "eos" && eos is { } e ? new[] { e } : Array.Empty<int>()).ToArray();
            return bridge is null ? lmIds : bridge.RewardIds(lmIds);
        }).ToList();
        return SequenceRewardBatches.Score(rm, sequences).Select(r => (double)r).ToArray();
    }
}
