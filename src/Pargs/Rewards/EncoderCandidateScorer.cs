using Pargs.Decoding;
using Pargs.Engine;
using Pargs.Tokenizers;
using static TorchSharp.torch;

namespace Pargs.Rewards;

/// <summary>
/// The candidate step of guided decoding with an encoder reward model. A bidirectional model has no prefix cache
/// (every token sees the new last token), so each candidate's whole text is scored: for every row the k texts
/// prompt ∘ y&lt;t ∘ v (complete UTF-8 characters, as the LM's bytes spell them), encoded as the model's input setting
/// says, all rows' candidates together in forwards batched by length bucket (<see cref="EncoderRewardModel.Score(IReadOnlyList{TokenizerEncoding})"/>).
/// Rows keep their bytes so far, so a step costs one tokenization per candidate, not a re-read of the LM ids.
/// The reference mode (the <c>--naive</c> oracle) rebuilds each candidate's text from all its LM ids and scores it
/// alone and unpadded: the batched scorer must agree with it.
/// </summary>
public sealed class EncoderCandidateScorer : ICandidateScorer
{
    readonly EncoderRewardModel rm;
    readonly LmText text;
    readonly CandidateScoringCounts counts;
    readonly bool reference;
    readonly List<Row> rows = new();
    long[] lastCandidates = [];
    int lastK;

    sealed class Row
    {
        public required int[] PromptIds;
        public required string PromptText;
        public List<int> Continuation = new();
        public List<byte> Bytes = new();
        public bool Started;

        public Row Clone() => new() { PromptIds = PromptIds, PromptText = PromptText, Continuation = new(Continuation), Bytes = new(Bytes), Started = Started };
    }

    internal EncoderCandidateScorer(EncoderRewardModel rm, LanguageModelInfo lm, CandidateScoringCounts counts, bool reference)
    {
        this.rm = rm;
        text = rm.TextOf(lm);
        this.counts = counts;
        this.reference = reference;
    }

    public int Rows => rows.Count;

    public void AddRows(IReadOnlyList<int[]> prompts)
    {
        foreach (var prompt in prompts)
        {
            var bytes = text.Bridge.BytesOf(prompt, out bool started);
            rows.Add(new Row { PromptIds = prompt, PromptText = RewardRetokenizer.CompleteText(bytes.ToArray()), Bytes = bytes, Started = started });
        }
    }

    public void KeepRows(int[] keep)
    {
        var kept = keep.Select(r => rows[r].Clone()).ToList();
        rows.Clear();
        rows.AddRange(kept);
    }

    public float[][] Score(Tensor candidates, IReadOnlyList<bool> active)
    {
        int k = (int)candidates.shape[1];
        long[] ids;
        using (NewDisposeScope()) // the conversion is a temporary (Models/TransformerBackbone.ForwardInScope says why)
            ids = candidates.to(ScalarType.Int64).data<long>().ToArray();
        var rewards = new float[Rows][];
        var inputs = new List<TokenizerEncoding>();
        var where = new List<(int Row, int Column)>();
        for (int b = 0; b < Rows; b++)
        {
            rewards[b] = new float[k];
            if (!active[b]) continue;
            for (int j = 0; j < k; j++)
            {
                int candidate = (int)ids[b * k + j];
                var (prompt, response) = reference
                    ? text.Split(rows[b].PromptIds, [.. rows[b].Continuation, candidate])
                    : LmText.Split(rows[b].PromptText, RewardRetokenizer.CompleteText([.. rows[b].Bytes, .. text.Bridge.BytesOf(candidate, rows[b].Started)]));
                var encoding = rm.Encode(prompt, response);
                if (reference) rewards[b][j] = rm.Forward([encoding], encoding.Ids.Length)[0]; // alone, no padding
                else
                {
                    inputs.Add(encoding);
                    where.Add((b, j));
                }
                counts.FullForwards++;
            }
        }
        if (inputs.Count > 0)
        {
            var scored = rm.Score(inputs);
            for (int i = 0; i < scored.Length; i++) rewards[where[i].Row][where[i].Column] = scored[i];
        }
        lastCandidates = ids;
        lastK = k;
        return rewards;
    }

    public void Commit(int[] chosen)
    {
        for (int b = 0; b < Rows; b++)
        {
            int id = (int)lastCandidates[b * lastK + chosen[b]];
            var row = rows[b];
            row.Continuation.Add(id);
            row.Bytes.AddRange(text.Bridge.BytesOf(id, row.Started));
            row.Started |= text.Bridge.Starts(id);
        }
    }

    public void Dispose() { }
}
