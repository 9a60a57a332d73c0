using Pargs.Checkpoints;
using static TorchSharp.torch;

namespace Pargs.Models.Families.GptNeoX;

/// <summary>
/// GPT-NeoX as llama.cpp's "gptneox" architecture (for <c>pargs convert --to gguf</c>): LayerNorms with biases, the
/// head as output.weight, use_parallel_residual and the rotated width (rope.dimension_count = int(head_size ·
/// rotary_pct)) as metadata. llama.cpp's attn_qkv reads all query rows, then all key rows, then all value rows, so
/// the per-head interleaved query_key_value ([heads, 3, head_size] rows) is regrouped on the way in, as llama.cpp's
/// own converter does.
/// </summary>
public static class GptNeoXGguf
{
    static readonly (string, string, bool)[] Tensors =
    [
        ("gpt_neox.embed_in.weight", "token_embd.weight", false),
        ("gpt_neox.final_layer_norm.weight", "output_norm.weight", false),
        ("gpt_neox.final_layer_norm.bias", "output_norm.bias", false),
        ("lm_head.weight", "output.weight", false),
        ("gpt_neox.layers.{i}.input_layernorm.weight", "blk.{i}.attn_norm.weight", false),
        ("gpt_neox.layers.{i}.input_layernorm.bias", "blk.{i}.attn_norm.bias", false),
        ("gpt_neox.layers.{i}.attention.query_key_value.weight", "blk.{i}.attn_qkv.weight", false),
        ("gpt_neox.layers.{i}.attention.query_key_value.bias", "blk.{i}.attn_qkv.bias", false),
        ("gpt_neox.layers.{i}.attention.dense.weight", "blk.{i}.attn_output.weight", false),
        ("gpt_neox.layers.{i}.attention.dense.bias", "blk.{i}.attn_output.bias", false),
        ("gpt_neox.layers.{i}.post_attention_layernorm.weight", "blk.{i}.ffn_norm.weight", false),
        ("gpt_neox.layers.{i}.post_attention_layernorm.bias", "blk.{i}.ffn_norm.bias", false),
        ("gpt_neox.layers.{i}.mlp.dense_h_to_4h.weight", "blk.{i}.ffn_up.weight", false),
        ("gpt_neox.layers.{i}.mlp.dense_h_to_4h.bias", "blk.{i}.ffn_up.bias", false),
        ("gpt_neox.layers.{i}.mlp.dense_4h_to_h.weight", "blk.{i}.ffn_down.weight", false),
        ("gpt_neox.layers.{i}.mlp.dense_4h_to_h.bias", "blk.{i}.ffn_down.bias", false),
    ];

    public static readonly GgufConverter.GgufFamily Family = new("gptneox", MetaRotaryLayout: false, LayerNorm: true, Tensors)
    {
        Check = Check,
        WriteMetadata = WriteMetadata,
        ToGgufLayout = ToGgufLayout,
        FromGgufLayout = FromGgufLayout,
        FromGgufConfig = FromGguf,
    };

    /// <summary>
    /// A gptneox GGUF's config. Its activation is llama.cpp's: the file has no hidden_act and llama.cpp's gptneox runs
    /// the tanh GELU, so Pargs reads it as gelu_new (a Pythia folder's exact GELU becomes the tanh form in GGUF).
    /// </summary>
    static ModelConfig FromGguf(GgufFile gguf, ModelConfig generic)
    {
        int headDim = generic.HeadDim;
        int dims = gguf.GetInt32("gptneox.rope.dimension_count", 2, headDim) ?? (int)(headDim * 0.25);
        bool parallel = gguf.Metadata.TryGetValue("gptneox.use_parallel_residual", out var p) && p is bool b ? b : true;
        bool bias = gguf.Find("blk.0.attn_qkv.bias") is not null;
        return generic with
        {
            NumKvHeads = generic.NumHeads,
            NormEps = gguf.GetNumber("gptneox.attention.layer_norm_epsilon") ?? 1e-5,
            AttentionBias = bias, AttentionOutputBias = bias,
            Extras = new GptNeoXSettings((double)dims / headDim, parallel, "gelu_new"),
        };
    }

    static IEnumerable<string> Check(ModelConfig config, string source)
    {
        if (!config.AttentionBias)
            throw new PargsException($"{source}: attention_bias false (gpt_neox) is not converted to GGUF: llama.cpp's gptneox needs the query_key_value and dense biases");
        if (config.TieWordEmbeddings)
            throw new PargsException($"{source}: tie_word_embeddings true (gpt_neox) is not converted to GGUF: llama.cpp's gptneox needs its own output.weight");
        var notes = new List<string>();
        if (GptNeoXSettings.Of(config).HiddenAct == "gelu")
            notes.Add("hidden_act gelu: llama.cpp's gptneox runs the tanh approximation of GELU (from a float16 table), not the exact GELU transformers and Pargs run");
        return notes;
    }

    static void WriteMetadata(GgufWriter writer, ModelConfig config)
    {
        writer.Set("gptneox.rope.dimension_count", GgufValue.U32(checked((uint)GptNeoXSettings.Of(config).RotaryDims(config))));
        writer.Set("gptneox.rope.freq_base", GgufValue.F32((float)config.RopeTheta));
        writer.Set("gptneox.use_parallel_residual", GgufValue.Bool(GptNeoXSettings.Of(config).UseParallelResidual));
    }

    /// <summary>attn_qkv rows [3, heads, head_size] (q rows, then k, then v) → query_key_value's [heads, 3, head_size].</summary>
    static Tensor FromGgufLayout(string ggufName, Tensor t, ModelConfig config)
    {
        if (!ggufName.EndsWith(".attn_qkv.weight", StringComparison.Ordinal) && !ggufName.EndsWith(".attn_qkv.bias", StringComparison.Ordinal)) return t;
        long h = config.NumHeads, d = config.HeadDim;
        long[] grouped = t.dim() == 2 ? [3, h, d, t.shape[1]] : [3, h, d];
        if (t.numel() != grouped.Aggregate(1L, (a, x) => a * x))
            throw new PargsException($"tensor \"{ggufName}\" has shape [{string.Join(", ", t.shape)}], which does not split into q, k, v of {h} heads × {d}");
        using var scope = NewDisposeScope();
        return t.reshape(grouped).transpose(0, 1).contiguous().reshape(t.shape).MoveToOuterDisposeScope();
    }

    /// <summary>query_key_value rows [heads, 3, head_size] (weight or bias) → [3, heads, head_size]: q rows, then k, then v.</summary>
    static Tensor ToGgufLayout(string ggufName, Tensor t, ModelConfig config)
    {
        if (!ggufName.EndsWith(".attn_qkv.weight", StringComparison.Ordinal) && !ggufName.EndsWith(".attn_qkv.bias", StringComparison.Ordinal)) return t;
        long h = config.NumHeads, d = config.HeadDim;
        long[] grouped = t.dim() == 2 ? [h, 3, d, t.shape[1]] : [h, 3, d];
        return t.reshape(grouped).transpose(0, 1).reshape(t.shape);
    }
}
