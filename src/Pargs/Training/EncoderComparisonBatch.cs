using Pargs.Rewards;
using Pargs.Tokenizers;
using static TorchSharp.torch;

namespace Pargs.Training;

/// <summary>
/// The prefix comparisons of some <see cref="EncoderPreferencePair"/>s materialized as encoder inputs: each compared
/// prefix (chosen and rejected side) is its own text, encoded as the model's input setting says (exactly as decoding
/// encodes a candidate). Identical inputs are read once — the shorter response's prefixes past its end are all its
/// whole text, and responses that start alike share their first prefixes — which changes no reward (the model has no
/// dropout) and no gradient (a shared row's reward is used by each comparison that names it).
/// </summary>
public sealed class EncoderComparisonBatch
{
    readonly List<TokenizerEncoding> rows = new();
    readonly List<long> chosen = new(), rejected = new(), prefixLengths = new(), responseLengths = new();
    readonly List<float> margins = new();

    /// <summary>Distinct encoder inputs: what one step of training reads.</summary>
    public IReadOnlyList<TokenizerEncoding> Rows => rows;
    /// <summary>Compared prefix pairs (N).</summary>
    public int Comparisons => chosen.Count;
    /// <summary>[N] i of each comparison.</summary>
    public IReadOnlyList<long> PrefixLengths => prefixLengths;
    /// <summary>[N] L of each comparison's pair.</summary>
    public IReadOnlyList<long> ResponseLengths => responseLengths;
    /// <summary>[N] the pair's margin (0 when it has none).</summary>
    public Tensor Margins => tensor(margins.ToArray());

    public static EncoderComparisonBatch Build(EncoderRewardModel model, IReadOnlyList<EncoderPreferencePair> pairs, Func<EncoderPreferencePair, IEnumerable<int>> prefixes)
    {
        var batch = new EncoderComparisonBatch();
        var seen = new Dictionary<string, int>();
        int limit = model.Classifier.Config.MaxTokens;
        for (int p = 0; p < pairs.Count; p++)
        {
            var pair = pairs[p];
            foreach (int i in prefixes(pair))
            {
                if (i < 1 || i > pair.ResponseLength)
                    throw new ArgumentException($"pair {p}: prefix length {i} is outside 1..{pair.ResponseLength}");
                batch.chosen.Add(batch.Row(model, seen, pair.Prompt, pair.ChosenPrefix(i), pair, limit));
                batch.rejected.Add(batch.Row(model, seen, pair.Prompt, pair.RejectedPrefix(i), pair, limit));
                batch.margins.Add((float)(pair.Margin ?? 0.0));
                batch.prefixLengths.Add(i);
                batch.responseLengths.Add(pair.ResponseLength);
            }
        }
        return batch;
    }

    int Row(EncoderRewardModel model, Dictionary<string, int> seen, string prompt, string response, EncoderPreferencePair pair, int limit)
    {
        var encoding = model.EncodeUnchecked(prompt, response);
        if (encoding.Ids.Length > limit)
            throw new PargsException($"{(pair.SourceLine > 0 ? $"line {pair.SourceLine}" : "a pair")}: a prefix of the response needs {encoding.Ids.Length} tokens, " +
                                     $"more than the encoder reads ({limit}); lower --max-length");
        string key = string.Join(',', encoding.Ids) + "|" + string.Join(',', encoding.TypeIds);
        if (seen.TryGetValue(key, out int at)) return at;
        seen[key] = rows.Count;
        rows.Add(encoding);
        return rows.Count - 1;
    }

    /// <summary>
    /// A rough count of the float32 activations a training forward keeps for the backward pass, per layer and padded
    /// token: ~10·hidden + 2·intermediate + 2·heads·T (q, k, v, scores and their softmax, context, residuals, norms, the
    /// feed-forward's two activations). It only has to be right within a factor of two: it turns an out-of-memory kill
    /// of the process (no swap) into a message saying which setting to lower.
    /// </summary>
    public long EstimatedActivationBytes(Models.Encoders.EncoderConfig c)
    {
        long bytes = 0;
        foreach (var group in rows.Select(r => (long)r.Ids.Length).Order().Chunk(EncoderRewardModel.MaxRowsPerForward))
        {
            long t = group.Max();
            bytes += group.Length * t * (c.NumLayers * (10L * c.HiddenSize + 2L * c.IntermediateSize + 2L * c.NumHeads * t) + 3L * c.HiddenSize) * sizeof(float);
        }
        return bytes;
    }

    /// <summary>
    /// Rewards (chosen [N], rejected [N]) with gradients: the distinct rows sorted by length and cut into forwards of at
    /// most <see cref="EncoderRewardModel.MaxRowsPerForward"/> rows, each right-padded to its own longest row.
    /// </summary>
    public (Tensor Chosen, Tensor Rejected) Rewards(EncoderRewardModel model)
    {
        var order = Enumerable.Range(0, rows.Count).OrderBy(r => rows[r].Ids.Length).ToArray();
        var parts = new List<Tensor>();
        foreach (var group in order.Chunk(EncoderRewardModel.MaxRowsPerForward))
        {
            var groupRows = group.Select(r => rows[r]).ToList();
            parts.Add(model.Label.Reward(model.Logits(groupRows, groupRows.Max(r => r.Ids.Length))));
        }
        var sorted = cat(parts, 0);
        var position = new long[rows.Count]; // row r's place in the sorted order
        for (int s = 0; s < order.Length; s++) position[order[s]] = s;
        var byRow = sorted.index_select(0, tensor(position));
        return (byRow.index_select(0, tensor(chosen.ToArray())), byRow.index_select(0, tensor(rejected.ToArray())));
    }
}
