using System.Text.RegularExpressions;
using Pargs.Models;
using Pargs.Models.Families.Llama;
using TorchSharp;

namespace Pargs.Checkpoints;

/// <summary>
/// Loads a llama-architecture GGUF (llama.cpp) as Hugging Face Llama tensors: llama.cpp names are mapped
/// to transformers names, q/k rows are converted from Meta's rotary layout (<see cref="MetaRotaryLayout"/>),
/// and the config comes from the <c>llama.*</c> metadata. The vocabulary is exposed separately
/// (<see cref="ReadVocabulary"/>); building a tokenizer from it is Pargs.Tokenizers' job.
/// </summary>
public static partial class GgufCheckpoint
{
    public static CheckpointContents Load(string path)
    {
        var gguf = GgufFile.Read(path);
        string arch = gguf.GetString("general.architecture")
            ?? throw new PargsException($"{path}: GGUF metadata lacks \"general.architecture\"");
        if (arch != "llama")
            throw new PargsException($"{path}: GGUF architecture \"{arch}\" is not supported (Pargs loads \"llama\" GGUF files)");
        var config = ReadConfig(gguf);

        var tensors = new Dictionary<string, torch.Tensor>(StringComparer.Ordinal);
        try
        {
            foreach (var info in gguf.Tensors)
            {
                string hfName = HuggingFaceName(info.Name)
                    ?? throw new PargsException($"{path}: tensor \"{info.Name}\" has no Llama counterpart Pargs knows (unsupported GGUF variant?)");
                var t = gguf.ReadTensor(info);
                if (hfName.EndsWith("q_proj.weight", StringComparison.Ordinal) || hfName.EndsWith("k_proj.weight", StringComparison.Ordinal))
                {
                    int heads = hfName.EndsWith("q_proj.weight", StringComparison.Ordinal) ? config.NumHeads : config.NumKvHeads;
                    using var meta = t;
                    if (t.dim() != 2 || t.shape[0] % (2L * heads) != 0)
                        throw new PargsException($"{path}: tensor \"{info.Name}\" has shape [{string.Join(", ", t.shape)}], which does not split into {heads} heads");
                    t = MetaRotaryLayout.ToHuggingFace(meta, heads);
                }
                tensors[hfName] = t;
            }
            // Converters (llama.cpp's convert-llama2c-to-ggml among them) write output.weight even when the
            // model shares it with the embedding; an exact copy means tied, as transformers would save it.
            if (tensors.TryGetValue("lm_head.weight", out var head) && tensors.TryGetValue("model.embed_tokens.weight", out var embed)
                && head.shape.SequenceEqual(embed.shape) && head.eq(embed).all().item<bool>())
            {
                tensors.Remove("lm_head.weight");
                head.Dispose();
                config = config with { TieWordEmbeddings = true };
            }
        }
        catch
        {
            foreach (var t in tensors.Values) t.Dispose();
            throw;
        }
        return CheckpointLoader.Complete(config, "LlamaForCausalLM", tensors, path, "gguf");
    }

    /// <summary>The <c>llama.*</c> metadata as a Hugging Face config; no output.weight means tied embeddings (Load also ties an exact copy).</summary>
    public static ModelConfig ReadConfig(GgufFile gguf)
    {
        string path = gguf.Path;
        int Required(string key)
        {
            long v = gguf.GetInteger(key) ?? throw new PargsException($"{path}: GGUF metadata lacks integer \"{key}\"");
            if (v <= 0 || v > int.MaxValue) throw new PargsException($"{path}: GGUF metadata \"{key}\" = {v} is not a positive int");
            return (int)v;
        }
        var embedding = gguf.Find("token_embd.weight") ?? throw new PargsException($"{path}: no tensor \"token_embd.weight\"");
        int vocab = (int)embedding.Shape[0];
        if (gguf.Metadata.TryGetValue("tokenizer.ggml.tokens", out var tokens) && tokens is string[] pieces && pieces.Length != vocab)
            throw new PargsException($"{path}: tokenizer.ggml.tokens has {pieces.Length} entries but token_embd.weight has {vocab} rows");
        int heads = Required("llama.attention.head_count");
        var config = new ModelConfig
        {
            ModelType = "llama",
            VocabSize = vocab,
            HiddenSize = Required("llama.embedding_length"),
            IntermediateSize = Required("llama.feed_forward_length"),
            NumLayers = Required("llama.block_count"),
            NumHeads = heads,
            NumKvHeads = gguf.GetInteger("llama.attention.head_count_kv") is { } kv ? (int)kv : heads,
            MaxPositions = gguf.GetInteger("llama.context_length") is { } ctx ? (int)ctx : 2048,
            RopeTheta = gguf.GetNumber("llama.rope.freq_base") ?? 10000.0,
            NormEps = gguf.GetNumber("llama.attention.layer_norm_rms_epsilon") ?? 1e-5,
            TieWordEmbeddings = gguf.Find("output.weight") is null,
            BosTokenId = (int?)gguf.GetInteger("tokenizer.ggml.bos_token_id"),
            EosTokenId = (int?)gguf.GetInteger("tokenizer.ggml.eos_token_id"),
            PadTokenId = (int?)gguf.GetInteger("tokenizer.ggml.padding_token_id"),
        }.Validate(path);
        // llama.cpp's rope scaling keys: linear maps onto rope_scaling; anything else would be ignored, so it is refused.
        if (gguf.GetString("llama.rope.scaling.type") is { } scalingType && scalingType != "none")
        {
            double factor = gguf.GetNumber("llama.rope.scaling.factor") ?? 1.0;
            if (scalingType != "linear")
                throw new PargsException($"{path}: GGUF metadata llama.rope.scaling.type = \"{scalingType}\" is not supported for model_type \"llama\" (Pargs reads \"linear\"; load the Hugging Face folder instead)");
            if (factor != 1.0) config = config with { RopeScaling = new RopeScaling { Type = "linear", Factor = factor } };
        }
        if (gguf.GetInteger("llama.rope.dimension_count") is { } ropeDims && ropeDims != config.HeadDim)
            throw new PargsException($"{path}: llama.rope.dimension_count {ropeDims} differs from the head size {config.HeadDim}; partial rotary is not supported");
        return config;
    }

    [GeneratedRegex(@"^blk\.(\d+)\.(\w+)\.(weight|bias)$")]
    private static partial Regex BlockTensor();

    /// <summary>llama.cpp tensor name → transformers LlamaForCausalLM name, or null when there is none.</summary>
    public static string? HuggingFaceName(string ggufName)
    {
        const string prefix = "model.";
        switch (ggufName)
        {
            case "token_embd.weight": return prefix + LlamaTensors.Embedding;
            case "output_norm.weight": return prefix + LlamaTensors.FinalNorm;
            case "output.weight": return "lm_head.weight";
        }
        var m = BlockTensor().Match(ggufName);
        if (!m.Success) return null;
        bool bias = m.Groups[3].Value == "bias";
        // llama.cpp's per-block names → the Llama family's declared tensors (LlamaTensors names them once). Biases are
        // not mapped: a q/k bias would need the Meta→HF rotary permute too, and llama GGUFs carry none.
        LlamaLayerTensor? tensor = (m.Groups[2].Value, bias) switch
        {
            ("attn_q", false) => LlamaLayerTensor.QProj,
            ("attn_k", false) => LlamaLayerTensor.KProj,
            ("attn_v", false) => LlamaLayerTensor.VProj,
            ("attn_output", false) => LlamaLayerTensor.OProj,
            ("ffn_gate", false) => LlamaLayerTensor.GateProj,
            ("ffn_up", false) => LlamaLayerTensor.UpProj,
            ("ffn_down", false) => LlamaLayerTensor.DownProj,
            ("attn_norm", false) => LlamaLayerTensor.InputNorm,
            ("ffn_norm", false) => LlamaLayerTensor.PostAttentionNorm,
            _ => null,
        };
        return tensor is { } t && int.TryParse(m.Groups[1].Value, out int layer) ? prefix + LlamaTensors.Name(layer, t) : null;
    }

    /// <summary>The SentencePiece-style vocabulary a GGUF carries (tokenizer.ggml.*), for building a tokenizer.</summary>
    public static (string[] Pieces, float[] Scores, int[]? TokenTypes, int? Bos, int? Eos) ReadVocabulary(GgufFile gguf)
    {
        if (!gguf.Metadata.TryGetValue("tokenizer.ggml.tokens", out var t) || t is not string[] pieces)
            throw new PargsException($"{gguf.Path}: GGUF has no string array \"tokenizer.ggml.tokens\" (no embedded vocabulary)");
        float[] scores = new float[pieces.Length];
        if (gguf.Metadata.TryGetValue("tokenizer.ggml.scores", out var s))
        {
            if (s is not float[] f || f.Length != pieces.Length)
                throw new PargsException($"{gguf.Path}: tokenizer.ggml.scores must be {pieces.Length} float32 values");
            scores = f;
        }
        int[]? types = null;
        if (gguf.Metadata.TryGetValue("tokenizer.ggml.token_type", out var ty))
        {
            if (ty is not int[] ints || ints.Length != pieces.Length)
                throw new PargsException($"{gguf.Path}: tokenizer.ggml.token_type must be {pieces.Length} integers");
            types = ints;
        }
        return (pieces, scores, types, (int?)gguf.GetInteger("tokenizer.ggml.bos_token_id"), (int?)gguf.GetInteger("tokenizer.ggml.eos_token_id"));
    }
}
