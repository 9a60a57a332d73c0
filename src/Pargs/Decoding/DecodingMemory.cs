using Pargs.Models;

namespace Pargs.Decoding;

/// <summary>
/// A memory estimate of one decoding batch, checked before decoding starts: a request such as
/// <c>best-of-n -n 1000000</c> asks for rows × samples × tokens of key/value cache, and must be refused with the
/// numbers rather than grow until the process dies of an out-of-memory stack trace. The estimate counts what
/// dominates and is sized by the request (caches and logits), not the model's weights, which are already loaded.
/// </summary>
public static class DecodingMemory
{
    /// <summary>
    /// Bytes of the largest batch the request decodes: LM (and reward-model) caches and one step's logits. A null
    /// <paramref name="lm"/> is a served one (`--lm-url`): its cache is the server's, only a local reward model's is here.
    /// </summary>
    public static double EstimateBytes(ModelConfig? lm, ModelConfig? rm, DecodingOptions options, int promptsPerBatch, int longestPrompt,
                                       KvCacheType lmCache = KvCacheType.F32, KvCacheType rmCache = KvCacheType.F32)
    {
        double rows = (double)promptsPerBatch * SamplesPerPrompt(options);
        double tokens = (double)longestPrompt + options.MaxNewTokens;
        // Guided methods score k candidates per row as extra cache slots beside each row's sequence.
        double candidates = options.Method.Method.IsTokenwiseGuided ? options.Method.RecordK ?? 1 : 1;
        double bytes = 0;
        if (lm != null)
            bytes += rows * (tokens + candidates) * KvCache.BytesPerSlot(lm, lmCache) // keys and values of every layer
                     + rows * candidates * lm.VocabSize * sizeof(float) * 2; // logits and their log-softmax
        if (rm != null) bytes += rows * (tokens + candidates) * KvCache.BytesPerSlot(rm, rmCache);
        return bytes;
    }

    /// <summary>What the process may use: the machine's (or container's) memory as the runtime sees it.</summary>
    public static long AvailableBytes() => GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;

    /// <summary>Refuses a request whose estimate exceeds <paramref name="availableBytes"/>, naming the numbers to lower.</summary>
    /// <remarks>Batches decoded at once (<see cref="DecodingOptions.Decoders"/>) each hold their own caches: the estimate is
    /// one batch's times as many as run together.</remarks>
    public static void Check(ModelConfig? lm, ModelConfig? rm, DecodingOptions options, int prompts, int longestPrompt, long? availableBytes = null,
                             KvCacheType lmCache = KvCacheType.F32, KvCacheType rmCache = KvCacheType.F32)
    {
        int perBatch = Math.Max(1, Math.Min(prompts, TextGenerator.BatchSizeFor(options)));
        int atOnce = TextGenerator.DecodersFor(options, prompts);
        double need = atOnce * EstimateBytes(lm, rm, options, perBatch, longestPrompt, lmCache, rmCache);
        long have = availableBytes ?? AvailableBytes();
        if (need <= have * 0.8) return;
        string samples = options.Method is Methods.BestOfNOptions b ? $" × {b.N} samples (-n)" : "";
        string batches = atOnce > 1 ? $"{atOnce} batches at once (--decoders) × " : "";
        throw new PargsException(
            $"this request needs about {Gb(need)} of memory for decoding ({batches}{perBatch} prompts per batch{samples} × up to {longestPrompt + options.MaxNewTokens} tokens), " +
            $"more than the {Gb(have)} available; lower {(samples.Length > 0 ? "-n, " : "")}{(atOnce > 1 ? "--decoders, " : "")}--batch-size or --max-new-tokens" +
            $"{((lm is not null ? lmCache : rmCache) == KvCacheType.F32 ? ", or halve the cache with --kv-cache f16" : "")}");
    }

    /// <summary>Rows a prompt becomes: N for Best-of-N, else one.</summary>
    static int SamplesPerPrompt(DecodingOptions options) => options.Method is Methods.BestOfNOptions b ? b.N : 1;

    static string Gb(double bytes) => bytes >= 1e9 ? $"{bytes / 1e9:F1} GB" : $"{bytes / 1e6:F0} MB";
}
