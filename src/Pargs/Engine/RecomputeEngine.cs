using Pargs.Decoding;
using Pargs.Models;
using Pargs.Rewards;
using static TorchSharp.torch;

namespace Pargs.Engine;

/// <summary>
/// The reference engine, as the paper's code runs decoding: no KV cache anywhere. Every step the LM re-reads
/// each row's prompt + sequence alone, and each candidate is scored by its own full reward-model forward of
/// prompt + sequence + candidate (<see cref="FromScratchScorer"/>). O(k·L²) work per token. It exists as the
/// correctness oracle of the cached engine (same tokens, same scores ≤ 1e-4) and as the benchmark baseline.
/// </summary>
public sealed class RecomputeEngine : LanguageModelEngine
{
    readonly CausalLM lm;

    public RecomputeEngine(CausalLM lm) => this.lm = lm;

    public override LanguageModelInfo Info => lm.Info;

    public override void CheckFits(IRewardModel? rm, DecodingOptions options, int prompts, int longestPrompt)
        => DecodingMemory.Check(lm.Config, rm?.Config, options, prompts, longestPrompt);

    public override ILanguageModelSession OpenSession(int capacity) => new RecomputeSession(lm);

    public override ICandidateScorer OpenScorer(IRewardModel rm, int candidates, int capacity, CandidateScoringCounts counts)
        => rm.OpenReferenceScorer(Info, counts);

    sealed class RecomputeSession : ILanguageModelSession
    {
        readonly CausalLM lm;
        readonly List<List<long>> sequences = new();
        readonly List<Tensor> logProbs = new(); // [V] per row

        public RecomputeSession(CausalLM lm) => this.lm = lm;

        public int Rows => sequences.Count;

        public NextTokens AddRows(IReadOnlyList<int[]> prompts)
        {
            foreach (var p in prompts)
            {
                if (p.Length == 0) throw new PargsException("a prompt has no tokens (add BOS or some text)");
                sequences.Add(p.Select(i => (long)i).ToList());
                logProbs.Add(Recompute(sequences[^1]));
            }
            return Current();
        }

        public NextTokens Append(long[] tokens)
        {
            for (int b = 0; b < Rows; b++)
            {
                sequences[b].Add(tokens[b]);
                logProbs[b].Dispose();
                logProbs[b] = Recompute(sequences[b]);
            }
            return Current();
        }

        public NextTokens KeepRows(int[] rows)
        {
            var keptSequences = rows.Select(r => sequences[r].ToList()).ToList();
            using var scope = NewDisposeScope(); // the clones are made in a scope and kept outside every scope
            var keptLogProbs = rows.Select(r => logProbs[r].clone().DetachFromDisposeScope()).ToList();
            foreach (var t in logProbs) t.Dispose();
            sequences.Clear(); sequences.AddRange(keptSequences);
            logProbs.Clear(); logProbs.AddRange(keptLogProbs);
            return Current();
        }

        /// <summary>The whole sequence through the model, alone, without a cache: the last position's log-probs.</summary>
        Tensor Recompute(List<long> sequence)
        {
            if (sequence.Count > lm.Config.MaxPositions)
                throw new PargsException($"the sequence needs {sequence.Count} positions but the model's context is {lm.Config.MaxPositions} (max_position_embeddings); shorten the prompt or max_new_tokens");
            using var _ = no_grad();
            using var scope = NewDisposeScope();
            var logits = lm.Logits(tensor(sequence.ToArray()).unsqueeze(0))[0, -1];
            return DecodingSteps.LogSoftmax(logits.unsqueeze(0))[0].DetachFromDisposeScope();
        }

        Tensor? current; // the rows' log-probs stacked [B, V], held across steps (outside any dispose scope)

        NextTokens Current()
        {
            current?.Dispose();
            using var scope = NewDisposeScope(); // made in a scope, then kept outside every scope: no torch call here runs on an unheld tensor
            current = (logProbs.Count == 0 ? empty(0, lm.Config.VocabSize) : stack(logProbs)).DetachFromDisposeScope();
            return new NextTokens(current);
        }

        public void Dispose()
        {
            current?.Dispose();
            foreach (var t in logProbs) t.Dispose();
        }
    }
}
