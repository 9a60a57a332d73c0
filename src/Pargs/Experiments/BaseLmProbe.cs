using Pargs.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Pargs.Experiments;

/// <summary>
/// The base LM as a measuring instrument for evaluation (it never judges reward):
/// <list type="bullet">
/// <item><see cref="ContinuationLogProbs"/>: log p(token | everything before it) of each continuation token given
/// BOS + prompt, from one <see cref="CausalLM.Logits"/> forward — the input of <c>Perplexity</c>.</item>
/// <item><see cref="Embed"/>: the mean over tokens (BOS left out) of the backbone's final-normalised last hidden
/// states. <c>Coherence</c> = cosine(Embed(prompt), Embed(continuation)), each text encoded on its own (with BOS),
/// as ARGS does with SimCSE sentence embeddings; here the base LM stands in for SimCSE, which we do not ship.</item>
/// </list>
/// The continuation's ids are ids(prompt + continuation) minus ids(prompt) — how the model saw them while
/// generating; if the tokenizer merged across the boundary, the continuation is encoded alone.
/// </summary>
public sealed class BaseLmProbe(CausalLM lm)
{
    readonly Dictionary<string, float[]> embeddings = new();

    public IReadOnlyList<double> ContinuationLogProbs(string prompt, string continuation)
    {
        var tokenizer = lm.Tokenizer ?? throw new PargsException($"{lm.Source}: the model has no tokenizer");
        int[] promptIds = tokenizer.Encode(prompt, addBos: true);
        int[] whole = tokenizer.Encode(prompt + continuation, addBos: true);
        int[] ids = whole.Length > promptIds.Length && whole.AsSpan(0, promptIds.Length).SequenceEqual(promptIds)
            ? whole
            : [.. promptIds, .. tokenizer.Encode(continuation, addBos: false)];
        int start = promptIds.Length, count = Math.Min(ids.Length, lm.Config.MaxPositions) - start;
        if (count <= 0) return [];
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var input = tensor(ids.Take(start + count).Select(i => (long)i).ToArray()).unsqueeze(0);
        var logp = lm.Logits(input).log_softmax(-1)[0];                       // [T, vocab]
        var targets = tensor(ids.Skip(start).Take(count).Select(i => (long)i).ToArray());
        var picked = logp.narrow(0, start - 1, count).gather(1, targets.unsqueeze(1)).squeeze(1);
        return picked.to(ScalarType.Float64).data<double>().ToArray();
    }

    public float[] Embed(string text)
    {
        if (embeddings.TryGetValue(text, out var cached)) return cached;
        var tokenizer = lm.Tokenizer ?? throw new PargsException($"{lm.Source}: the model has no tokenizer");
        int[] ids = tokenizer.Encode(text, addBos: true).Take(lm.Config.MaxPositions).ToArray();
        int skip = tokenizer.BosId is { } bos && ids.Length > 1 && ids[0] == bos ? 1 : 0;
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var input = tensor(ids.Select(i => (long)i).ToArray()).unsqueeze(0);
        var valid = ones_like(input, dtype: ScalarType.Bool);
        var hidden = lm.Backbone.ForwardPadded(input, valid)[0];
        var pooled = hidden.narrow(0, skip, ids.Length - skip).mean([0]);
        var vector = pooled.to(ScalarType.Float32).data<float>().ToArray();
        embeddings[text] = vector;
        return vector;
    }
}
