using System.Text.RegularExpressions;
using Pargs.Models;
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
            ExpectedTensors.Check(config, "LlamaForCausalLM", tensors, path);
        }
        catch
        {
            foreach (var t in tensors.Values) t.Dispose();
            throw;
        }
        return new CheckpointContents
        {
            Config = config,
            Tensors = tensors,
            Source = path,
            Format = "gguf",
            Architecture = "LlamaForCausalLM",
        };
    }

    /// <summary>The <c>llama.*</c> metadata as a Hugging Face config; no output.weight means tied embeddings (Load also ties an exact copy).</summary>
    public static ModelConfig ReadConfig(GgufFile gguf)
    {
        string path = gguf.Path;
        int Required(string key)
        {
            return gguf.GetInt32(key, 1, int.MaxValue) ?? throw new PargsException($"{path}: GGUF metadata lacks integer \"{key}\"");
        }
        var embedding = gguf.Find("token_embd.weight") ?? throw new PargsException($"{path}: no tensor \"token_embd.weight\"");
        if (embedding.Shape.Length != 2 || embedding.Shape[0] is < 1 or > int.MaxValue)
            throw new PargsException($"{path}: token_embd.weight has shape [{string.Join(", ", embedding.Shape)}]; expected [vocabulary, hidden]");
        int vocab = (int)embedding.Shape[0];
        if (gguf.Metadata.TryGetValue("tokenizer.ggml.tokens", out var tokens) && tokens is string[] pieces && pieces.Length != vocab)
            throw new PargsException($"{path}: tokenizer.ggml.tokens has {pieces.Length} entries but token_embd.weight has {vocab} rows");
        int heads = Required("llama.attention.head_count");
        var config = new ModelConfig
        {
            Family = ModelFamily.Llama,
            ModelType = "llama",
            VocabSize = vocab,
            HiddenSize = Required("llama.embedding_length"),
            IntermediateSize = Required("llama.feed_forward_length"),
            NumLayers = Required("llama.block_count"),
            NumHeads = heads,
            NumKvHeads = gguf.GetInt32("llama.attention.head_count_kv", 1, int.MaxValue) ?? heads,
            MaxPositions = gguf.GetInt32("llama.context_length", 1, int.MaxValue) ?? 2048,
            RopeTheta = gguf.GetNumber("llama.rope.freq_base") ?? 10000.0,
            NormEps = gguf.GetNumber("llama.attention.layer_norm_rms_epsilon") ?? 1e-5,
            TieWordEmbeddings = gguf.Find("output.weight") is null,
            BosTokenId = gguf.GetInt32("tokenizer.ggml.bos_token_id", 0, int.MaxValue),
            EosTokenId = gguf.GetInt32("tokenizer.ggml.eos_token_id", 0, int.MaxValue),
            PadTokenId = gguf.GetInt32("tokenizer.ggml.padding_token_id", 0, int.MaxValue),
        }.Validate(path);
        if (gguf.GetInteger("llama.rope.dimension_count") is { } ropeDims && ropeDims != config.HeadDim)
            throw new PargsException($"{path}: llama.rope.dimension_count {ropeDims} differs from the head size {config.HeadDim}; partial rotary is not supported");
        return config;
    }

    [GeneratedRegex(@"^blk\.(\d+)\.(\w+)\.(weight|bias)$")]
    private static partial Regex BlockTensor();

    /// <summary>llama.cpp tensor name → transformers LlamaForCausalLM name, or null when there is none.</summary>
    public static string? HuggingFaceName(string ggufName)
    {
        switch (ggufName)
        {
            case "token_embd.weight": return "model.embed_tokens.weight";
            case "output_norm.weight": return "model.norm.weight";
            case "output.weight": return "lm_head.weight";
        }
        var m = BlockTensor().Match(ggufName);
        if (!m.Success) return null;
        string part = m.Groups[2].Value switch
        {
            "attn_q" => "self_attn.q_proj",
            "attn_k" => "self_attn.k_proj",
            "attn_v" => "self_attn.v_proj",
            "attn_output" => "self_attn.o_proj",
            "ffn_gate" => "mlp.gate_proj",
            "ffn_up" => "mlp.up_proj",
            "ffn_down" => "mlp.down_proj",
            "attn_norm" => "input_layernorm",
            "ffn_norm" => "post_attention_layernorm",
            _ => "",
        };
        return part.Length == 0 ? null : $"model.layers.{m.Groups[1].Value}.{part}.{m.Groups[3].Value}";
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
        return (pieces, scores, types, gguf.GetInt32("tokenizer.ggml.bos_token_id", 0, int.MaxValue), gguf.GetInt32("tokenizer.ggml.eos_token_id", 0, int.MaxValue));
    }
}
