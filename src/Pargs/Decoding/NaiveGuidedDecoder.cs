using Pargs.Models;
using Pargs.Rewards;
using static TorchSharp.torch;

namespace Pargs.Decoding;

/// <summary>
/// The reference algorithm as the paper's code runs it: no KV cache anywhere; at every step the LM re-reads
/// prompt + sequence, and each of the k candidates is scored by its own full reward-model forward of
/// prompt + sequence + candidate. O(k·L²) work per token. Exists only as the benchmark baseline and as the
/// correctness oracle of <see cref="TokenwiseDecoder"/> (same choices for greedy methods, same scores). With
/// different tokenizers each candidate's RM ids are rebuilt from scratch from the whole text
/// (<see cref="RewardRetokenizer.RewardIds"/>) — the oracle of <see cref="RetokenizingScorer"/>.
/// </summary>
public sealed class NaiveGuidedDecoder
{
    readonly CausalLM lm;
    readonly IRewardModel? rm;
    readonly RewardRetokenizer? bridge; // null: LM ids go straight to the RM
    readonly DecodingOptions options;

    public NaiveGuidedDecoder(CausalLM lm, IRewardModel? rm, DecodingOptions options)
    {
        if (options.Method is DecodingMethod.TopP or DecodingMethod.BestOfN)
            throw new PargsException($"--naive applies to greedy, topk, args, pargs and pargs-g, not {options.Method.Name()}");
        this.lm = lm;
        this.rm = options.Method.RewardModelFor(rm);
        bridge = this.rm is null ? null : RewardRetokenizer.For(lm, this.rm);
        this.options = options;
    }

    public Action<StepTrace>? Trace { get; init; }

    public void Run(IReadOnlyList<int[]> prompts, IReadOnlyList<RowProgress> rows, Action<RowProgress>? onToken = null)
    {
        using var _ = no_grad();
        for (int b = 0; b < prompts.Count; b++)
        {
            var row = rows[b];
            var random = new[] { DecodingSteps.RowRandom(options.Seed, row.PromptIndex, row.SampleIndex) };
            var sequence = prompts[b].Select(i => (long)i).ToList();
            for (int step = 0; step < options.MaxNewTokens && !row.Done; step++)
            {
                using var scope = NewDisposeScope();
                var logits = lm.Logits(tensor(sequence.ToArray()).unsqueeze(0))[0, -1];
                var logProbs = DecodingSteps.LogSoftmax(logits.unsqueeze(0));
                int k = options.Method == DecodingMethod.Greedy ? 1 : options.K;
                var (candLogp, candIds) = DecodingSteps.TopK(logProbs, k);
                var rowScores = DecodingSteps.ToRows(candLogp);
                var ids = candIds.data<long>().ToArray();
                if (rm is not null)
                {
                    var rewards = new float[k];
                    for (int j = 0; j < k; j++)
                    {
                        var extended = bridge is null ? tensor(sequence.Append(ids[j]).ToArray()).unsqueeze(0)
                            : tensor(bridge.RewardIds(sequence.Append(ids[j]).Select(i => (int)i).ToList()).Select(i => (long)i).ToArray()).unsqueeze(0);
                        rewards[j] = rm.SequenceRewards(extended, ones_like(extended, dtype: ScalarType.Bool))[0].item<float>();
                    }
                    rowScores = DecodingSteps.Combine(rowScores, [rewards], options.W);
                }
                int chosen = DecodingSteps.Choose(rowScores, options.Method.Samples(), options.Temperature, random)[0];
                Trace?.Invoke(new StepTrace(b, step, ids, rowScores[0], chosen));
                row.Accept((int)ids[chosen]);
                sequence.Add(ids[chosen]);
                onToken?.Invoke(row);
            }
        }
    }
}
