using Pargs.Checkpoints;

namespace Pargs.Models.Families.Gemma;

/// <summary>
/// Gemma-2 / Gemma-3 text in llama.cpp's GGUF ("gemma2", "gemma3"): the tensor names, the metadata beyond the keys
/// every family writes, and the way back. Every Gemma norm is stored as 1 + w (llama.cpp multiplies by the stored
/// value; <see cref="GgufConverter.GgufFamily.NormWeightsPlusOne"/> adds the one on writing and the loader takes it off).
/// What llama.cpp's graph cannot express is refused on conversion rather than written and silently lost:
/// llama.cpp takes the attention scale as head_dim^−½ (hidden/heads for the 27B shapes), not from
/// query_pre_attn_scalar; has no q/k/v biases for Gemma; soft-caps attention scores on gemma2 only; reads the
/// sliding layers as one period (sliding_window_pattern), and the gemma2 head as the embedding itself.
/// </summary>
public static class GemmaGguf
{
    static readonly (string, string, bool)[] Common =
    [
        ("model.embed_tokens.weight", "token_embd.weight", false),
        ("model.norm.weight", "output_norm.weight", false),
        ("lm_head.weight", "output.weight", false),
        ("model.layers.{i}.input_layernorm.weight", "blk.{i}.attn_norm.weight", false),
        ("model.layers.{i}.self_attn.q_proj.weight", "blk.{i}.attn_q.weight", false),
        ("model.layers.{i}.self_attn.k_proj.weight", "blk.{i}.attn_k.weight", false),
        ("model.layers.{i}.self_attn.v_proj.weight", "blk.{i}.attn_v.weight", false),
        ("model.layers.{i}.self_attn.o_proj.weight", "blk.{i}.attn_output.weight", false),
        ("model.layers.{i}.post_attention_layernorm.weight", "blk.{i}.post_attention_norm.weight", false),
        ("model.layers.{i}.pre_feedforward_layernorm.weight", "blk.{i}.ffn_norm.weight", false),
        ("model.layers.{i}.mlp.gate_proj.weight", "blk.{i}.ffn_gate.weight", false),
        ("model.layers.{i}.mlp.up_proj.weight", "blk.{i}.ffn_up.weight", false),
        ("model.layers.{i}.mlp.down_proj.weight", "blk.{i}.ffn_down.weight", false),
        ("model.layers.{i}.post_feedforward_layernorm.weight", "blk.{i}.post_ffw_norm.weight", false),
    ];

    public static readonly IReadOnlyList<(string HuggingFace, string Gguf, bool Transpose)> Gemma2Tensors = Common;

    public static readonly IReadOnlyList<(string HuggingFace, string Gguf, bool Transpose)> Gemma3Tensors =
    [
        .. Common,
        ("model.layers.{i}.self_attn.q_norm.weight", "blk.{i}.attn_q_norm.weight", false),
        ("model.layers.{i}.self_attn.k_norm.weight", "blk.{i}.attn_k_norm.weight", false),
    ];

    /// <summary>llama.cpp's attention scale rule as a query_pre_attn_scalar: head_dim, or hidden/heads for the 27B layer counts.</summary>
    static double LlamaCppQueryScalar(ModelConfig c, string arch)
        => (arch == "gemma2" ? c.NumLayers == 46 : c.NumLayers == 62) ? (double)(c.HiddenSize / c.NumHeads) : c.HeadDim;

    /// <summary>The period p with layer i sliding exactly when i % p &lt; p − 1 (llama.cpp's set_swa_pattern), or null when there is none.</summary>
    static int? Period(IReadOnlyList<bool> sliding)
    {
        if (!sliding.Any(s => s)) return null;
        for (int p = 1; p <= sliding.Count + 1; p++)
            if (Enumerable.Range(0, sliding.Count).All(i => sliding[i] == (i % p < p - 1))) return p;
        return null;
    }

    /// <summary>The arch's keys beyond the shared ones, after refusing what llama.cpp would compute differently.</summary>
    public static void WriteMetadata(GgufWriter writer, ModelConfig c, string source)
    {
        var g = GemmaSettings.Of(c);
        string arch = c.ModelType == GemmaFamily.Gemma2 ? "gemma2" : "gemma3";
        PargsException Refuse(string what) => new($"{source}: {what} ({c.ModelType}) has no place in llama.cpp's \"{arch}\"; pargs convert cannot write it");
        double expected = LlamaCppQueryScalar(c, arch);
        if (g.QueryPreAttnScalar != expected)
            throw Refuse($"query_pre_attn_scalar {g.QueryPreAttnScalar} (llama.cpp scales attention by {expected}^-1/2)");
        if (c.AttentionBias) throw Refuse("attention_bias true");
        if (arch == "gemma2" && !c.TieWordEmbeddings) throw Refuse("an untied lm_head (tie_word_embeddings false)");
        if (arch == "gemma3" && g.AttnLogitSoftcapping is { } cap) throw Refuse($"attn_logit_softcapping {cap}");
        if (arch == "gemma3" && g.LocalRopeScaling is not null) throw Refuse("a scaled rotary on the sliding layers");
        int? period = Period(g.SlidingLayers);
        if (g.SlidingLayers.Any(s => s) && period is null)
            throw Refuse($"layer_types {string.Concat(g.SlidingLayers.Select(s => s ? 'S' : 'G'))} (not one repeating period)");

        writer.Set($"{arch}.attention.key_length", GgufValue.U32(checked((uint)c.HeadDim)));
        writer.Set($"{arch}.attention.value_length", GgufValue.U32(checked((uint)c.HeadDim)));
        writer.Set($"{arch}.rope.freq_base_swa", GgufValue.F32((float)g.LocalRopeTheta));
        if (period is { } p)
        {
            writer.Set($"{arch}.attention.sliding_window", GgufValue.U32(checked((uint)c.SlidingWindow!.Value)));
            writer.Set($"{arch}.attention.sliding_window_pattern", GgufValue.U32(checked((uint)p)));
        }
        else if (arch == "gemma2") throw Refuse("no sliding layers"); // llama.cpp's gemma2 always has its window
        if (arch == "gemma2")
        {
            // No soft-cap in transformers is a cap of infinity; llama.cpp always applies one on gemma2.
            writer.Set("gemma2.attn_logit_softcapping", GgufValue.F32((float)(g.AttnLogitSoftcapping ?? throw Refuse("attn_logit_softcapping null"))));
            writer.Set("gemma2.final_logit_softcapping", GgufValue.F32((float)(g.FinalLogitSoftcapping ?? throw Refuse("final_logit_softcapping null"))));
        }
        else if (g.FinalLogitSoftcapping is { } final) writer.Set("gemma3.final_logit_softcapping", GgufValue.F32((float)final));
        if (c.RopeScaling is { } scaling)
        {
            if (scaling.Type != "linear") throw Refuse($"rope_scaling type \"{scaling.Type}\"");
            writer.Set($"{arch}.rope.scaling.type", GgufValue.String("linear"));
            writer.Set($"{arch}.rope.scaling.factor", GgufValue.F32((float)scaling.Factor!.Value));
        }
    }

    /// <summary>
    /// A gemma2 / gemma3 GGUF's metadata as a config, with llama.cpp's defaults for absent keys (gemma2: window 4096
    /// every other layer, soft-caps 50 and 30; gemma3: no window unless given, period 6, no final soft-cap). The
    /// attention scale is llama.cpp's rule, which is what the file was made for.
    /// </summary>
    public static ModelConfig ReadConfig(GgufFile gguf, string arch)
    {
        string path = gguf.Path;
        bool gemma2 = arch == "gemma2";
        int Required(string key) => gguf.GetInt32(key, 1, int.MaxValue) ?? throw new PargsException($"{path}: GGUF metadata lacks integer \"{key}\"");
        double Number(string key, double fallback) => gguf.GetNumber(key) ?? fallback;
        var embedding = gguf.Find("token_embd.weight") ?? throw new PargsException($"{path}: no tensor \"token_embd.weight\"");
        if (embedding.Shape.Length != 2 || embedding.Shape[0] is < 1 or > int.MaxValue)
            throw new PargsException($"{path}: token_embd.weight has shape [{string.Join(", ", embedding.Shape)}]; expected [vocabulary, hidden]");
        int layers = Required($"{arch}.block_count"), heads = Required($"{arch}.attention.head_count"), hidden = Required($"{arch}.embedding_length");
        if (layers > 1 << 16) throw new PargsException($"{path}: {arch}.block_count {layers} is implausibly large");
        int headDim = gguf.GetInt32($"{arch}.attention.key_length", 1, 1 << 16) ?? hidden / heads;
        if (gguf.GetInt32($"{arch}.attention.value_length", 1, 1 << 16) is { } valueLength && valueLength != headDim)
            throw new PargsException($"{path}: {arch}.attention.value_length {valueLength} differs from key_length {headDim}; Gemma's heads have one size");
        if (gguf.GetInteger($"{arch}.rope.dimension_count") is { } ropeDims && ropeDims != headDim)
            throw new PargsException($"{path}: {arch}.rope.dimension_count {ropeDims} differs from the head size {headDim}; partial rotary is not supported");
        RopeScaling? scaling = null;
        if (gguf.GetString($"{arch}.rope.scaling.type") is { } scalingType && scalingType != "none")
        {
            double factor = Number($"{arch}.rope.scaling.factor", 1.0);
            if (scalingType != "linear")
                throw new PargsException($"{path}: GGUF metadata {arch}.rope.scaling.type = \"{scalingType}\" is not supported for {arch} (Pargs reads \"linear\")");
            if (factor != 1.0 && factor != 0.0) scaling = new RopeScaling { Type = "linear", Factor = factor };
        }
        foreach (var bias in new[] { "blk.0.attn_q.bias", "blk.0.attn_output.bias" })
            if (gguf.Find(bias) is not null) throw new PargsException($"{path}: tensor \"{bias}\": llama.cpp's {arch} has no attention biases");
        int? window = gguf.GetInt32($"{arch}.attention.sliding_window", 0, int.MaxValue) ?? (gemma2 ? 4096 : null);
        int pattern = gguf.GetInt32($"{arch}.attention.sliding_window_pattern", 0, 1 << 16) ?? (gemma2 ? 2 : 6);
        bool[] sliding = Enumerable.Range(0, layers).Select(i => window is > 0 && (pattern == 0 || i % pattern < pattern - 1)).ToArray();
        double theta = Number($"{arch}.rope.freq_base", 10000.0);
        var config = new ModelConfig
        {
            ModelType = gemma2 ? GemmaFamily.Gemma2 : GemmaFamily.Gemma3Text,
            VocabSize = (int)embedding.Shape[0],
            HiddenSize = hidden,
            IntermediateSize = Required($"{arch}.feed_forward_length"),
            NumLayers = layers,
            NumHeads = heads,
            NumKvHeads = gguf.GetInt32($"{arch}.attention.head_count_kv", 1, int.MaxValue) ?? heads,
            HeadDim = headDim,
            MaxPositions = gguf.GetInt32($"{arch}.context_length", 1, int.MaxValue) ?? 8192,
            RopeTheta = theta,
            RopeScaling = scaling,
            SlidingWindow = sliding.Any(s => s) ? window : null,
            NormEps = Number($"{arch}.attention.layer_norm_rms_epsilon", 1e-6),
            TieWordEmbeddings = gemma2 || gguf.Find("output.weight") is null,
            QkNorm = !gemma2,
            BosTokenId = gguf.GetInt32("tokenizer.ggml.bos_token_id", 0, int.MaxValue),
            EosTokenId = gguf.GetInt32("tokenizer.ggml.eos_token_id", 0, int.MaxValue),
            PadTokenId = gguf.GetInt32("tokenizer.ggml.padding_token_id", 0, int.MaxValue),
        };
        return config with
        {
            Extras = new GemmaSettings
            {
                QueryPreAttnScalar = LlamaCppQueryScalar(config, arch),
                AttnLogitSoftcapping = gemma2 ? Number("gemma2.attn_logit_softcapping", 50.0) : null,
                FinalLogitSoftcapping = gemma2 ? Number("gemma2.final_logit_softcapping", 30.0)
                    : gguf.GetNumber("gemma3.final_logit_softcapping") is { } cap and not 0 ? cap : null,
                SlidingLayers = new ValueList<bool>(sliding),
                LocalRopeTheta = Number($"{arch}.rope.freq_base_swa", gemma2 ? theta : 10000.0),
                LocalRopeScaling = gemma2 ? scaling : null,
            },
        };
    }
}
