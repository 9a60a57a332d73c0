using System.Text.RegularExpressions;
using Pargs.Models;
using Pargs.Models.Families.Llama;
using TorchSharp;

namespace Pargs.Checkpoints;

/// <summary>
/// Loads a GGUF (llama.cpp) of architecture llama, qwen2, qwen3, gpt2, phi3, gptneox, gemma2 or gemma3 as Hugging Face tensors: llama.cpp names
/// are mapped back through <see cref="GgufConverter.Families"/> (the one name table, read in reverse),
/// q/k rows (and biases) of "llama" files are converted from Meta's rotary layout
/// (<see cref="MetaRotaryLayout"/>), GPT-2 matrices go back to Conv1D's [in, out], and the config comes
/// from the <c>{arch}.*</c> metadata. The vocabulary is exposed separately (<see cref="ReadVocabulary"/>);
/// building a tokenizer from it is Pargs.Tokenizers' job.
/// </summary>
public static partial class GgufCheckpoint
{
    /// <summary>GGUF architecture → the Hugging Face model type Pargs loads it as.</summary>
    static readonly Dictionary<string, string> ModelTypeOfArchitecture = new(StringComparer.Ordinal)
    {
        ["llama"] = "llama", ["qwen2"] = "qwen2", ["qwen3"] = "qwen3", ["gpt2"] = "gpt2", ["phi3"] = "phi3", ["gptneox"] = "gpt_neox",
        ["gemma2"] = "gemma2", ["gemma3"] = "gemma3_text",
    };

    public static CheckpointContents Load(string path)
    {
        var gguf = GgufFile.Read(path);
        var config = ReadConfig(gguf);
        var family = GgufConverter.Families[config.ModelType];
        string architecture = config.ModelType switch { "gpt2" => "GPT2LMHeadModel", "qwen2" => "Qwen2ForCausalLM", "qwen3" or "phi3" or "gpt_neox" => config.Family.CausalLMArchitecture(config), _ => "LlamaForCausalLM" };
        if (family.NormWeightsPlusOne) architecture = config.Family.CausalLMArchitecture(config);
        // A reward model pargs convert wrote: the head is llama.cpp's classifier output (StoredCheckpoint.GgufScoreTensor).
        bool rewardModel = gguf.Tensors.Any(t => t.Name == StoredCheckpoint.GgufScoreTensor);
        if (rewardModel) architecture = config.Family.SequenceClassificationArchitecture(config);
        string embeddingName = config.ModelType switch { "gpt2" => "transformer.wte.weight", "gpt_neox" => "gpt_neox.embed_in.weight", _ => "model.embed_tokens.weight" };

        var tensors = new Dictionary<string, torch.Tensor>(StringComparer.Ordinal);
        try
        {
            foreach (var info in gguf.Tensors)
            {
                if (family.FromGgufConfig is not null && info.Name.StartsWith("rope_factors_", StringComparison.Ordinal)) continue; // read into the config
                if (info.Name == LlamaGguf.RopeFreqsTensor) continue; // read into the config (ReadConfig)
                var (hfName, transpose) = info.Name == StoredCheckpoint.GgufScoreTensor ? ("score.weight", false) : HuggingFaceName(family, info.Name)
                    ?? throw new PargsException($"{path}: tensor \"{info.Name}\" has no {architecture} counterpart Pargs knows (unsupported GGUF variant?)");
                var t = gguf.ReadTensor(info);
                if (family.MetaRotaryLayout && (hfName.Contains(".q_proj.", StringComparison.Ordinal) || hfName.Contains(".k_proj.", StringComparison.Ordinal)))
                {
                    int heads = hfName.Contains(".q_proj.", StringComparison.Ordinal) ? config.NumHeads : config.NumKvHeads;
                    using var meta = t;
                    if (t.dim() is < 1 or > 2 || t.shape[0] % (2L * heads) != 0)
                        throw new PargsException($"{path}: tensor \"{info.Name}\" has shape [{string.Join(", ", t.shape)}], which does not split into {heads} heads");
                    if (t.dim() == 2) t = MetaRotaryLayout.ToHuggingFace(meta, heads);
                    else
                    {
                        // A bias is permuted like a one-column matrix.
                        using var column = meta.unsqueeze(1);
                        using var permuted = MetaRotaryLayout.ToHuggingFace(column, heads);
                        t = permuted.squeeze(1);
                    }
                }
                if (transpose)
                {
                    using var stored = t;
                    if (t.dim() != 2) throw new PargsException($"{path}: tensor \"{info.Name}\" should be a matrix, has shape [{string.Join(", ", t.shape)}]");
                    using var transposed = stored.t(); // a view of the stored weight: undisposed, it kept that storage alive too
                    t = transposed.contiguous();
                }
                if (family.NormWeightsPlusOne && hfName.EndsWith("norm.weight", StringComparison.Ordinal))
                {
                    using var stored = t;
                    t = stored.Minus(1.0); // llama.cpp's 1 + w back to transformers' w
                }
                if (family.FromGgufLayout is { } relayout)
                {
                    torch.Tensor moved;
                    try { moved = relayout(info.Name, t, config); }
                    catch { t.Dispose(); throw; } // not in `tensors` yet: the catch below would not free it
                    if (!ReferenceEquals(moved, t))
                    {
                        t.Dispose();
                        t = moved;
                    }
                }
                tensors[hfName] = t;
            }
            // Converters (llama.cpp's convert-llama2c-to-ggml among them) write output.weight even when the
            // model shares it with the embedding; an exact copy means tied, as transformers would save it.
            if (tensors.TryGetValue("lm_head.weight", out var head) && tensors.TryGetValue(embeddingName, out var embed)
                && head.shape.SequenceEqual(embed.shape) && SameValues(head, embed))
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
        var contents = CheckpointLoader.Complete(config, architecture, tensors, path, "gguf");
        // GPT2LMHeadModel keeps lm_head as its own parameter name even when tied (see HuggingFaceFolder).
        if (config.ModelType == "gpt2" && config.TieWordEmbeddings && !contents.Tensors.ContainsKey("lm_head.weight"))
            contents.Tensors["lm_head.weight"] = contents.Tensors[embeddingName].alias();
        return contents;
    }

    /// <summary>
    /// Whether two tensors of one shape hold the same values (NaN equals nothing, as in torch's eq). Its temporaries freed here:
    /// the comparison is a bool per element — 0.5 GB for an 8B model's embedding — that the GC would otherwise hold.
    /// </summary>
    static bool SameValues(torch.Tensor a, torch.Tensor b)
    {
        using var equal = a.eq(b);
        using var all = equal.all();
        return all.item<bool>();
    }

    /// <summary>The <c>{arch}.*</c> metadata as a Hugging Face config; no output.weight means tied embeddings (Load also ties an exact copy).</summary>
    public static ModelConfig ReadConfig(GgufFile gguf)
    {
        string path = gguf.Path;
        string arch = gguf.GetString("general.architecture")
            ?? throw new PargsException($"{path}: GGUF metadata lacks \"general.architecture\"");
        if (!ModelTypeOfArchitecture.TryGetValue(arch, out var modelType))
            throw new PargsException($"{path}: GGUF architecture \"{arch}\" is not supported (Pargs loads {string.Join(", ", ModelTypeOfArchitecture.Keys.Select(k => $"\"{k}\""))} GGUF files)");
        if (arch is "gemma2" or "gemma3") return Models.Families.Gemma.GemmaGguf.ReadConfig(gguf, arch).Validate(path);
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
        int heads = Required($"{arch}.attention.head_count");
        bool gpt2 = arch == "gpt2";
        if (gpt2 && gguf.GetInteger($"{arch}.attention.head_count_kv") is { } kvHeads && kvHeads != heads)
            throw new PargsException($"{path}: {arch}.attention.head_count_kv {kvHeads} differs from head_count {heads}; GPT-2 has no grouped-query attention");
        var config = new ModelConfig
        {
            ModelType = modelType,
            VocabSize = vocab,
            HiddenSize = Required($"{arch}.embedding_length"),
            IntermediateSize = Required($"{arch}.feed_forward_length"),
            NumLayers = Required($"{arch}.block_count"),
            NumHeads = heads,
            NumKvHeads = gguf.GetInt32($"{arch}.attention.head_count_kv", 1, int.MaxValue) ?? heads,
            // GPT-2's learned positions fix the context; the table's rows are the truth.
            MaxPositions = gpt2 && gguf.Find("position_embd.weight") is { } positions ? (int)positions.Shape[0]
                : gguf.GetInt32($"{arch}.context_length", 1, int.MaxValue) ?? 2048,
            RopeTheta = gguf.GetNumber($"{arch}.rope.freq_base") ?? 10000.0,
            NormEps = (gpt2 ? gguf.GetNumber($"{arch}.attention.layer_norm_epsilon") : gguf.GetNumber($"{arch}.attention.layer_norm_rms_epsilon")) ?? 1e-5,
            TieWordEmbeddings = gguf.Find("output.weight") is null,
            AttentionBias = !gpt2 && gguf.Find("blk.0.attn_q.bias") is not null,
            // transformers' Llama: attention_bias puts biases on q/k/v and o_proj together (qwen2 has q/k/v only).
            AttentionOutputBias = modelType == "llama" && gguf.Find("blk.0.attn_output.bias") is not null,
            BosTokenId = gguf.GetInt32("tokenizer.ggml.bos_token_id", 0, int.MaxValue),
            EosTokenId = gguf.GetInt32("tokenizer.ggml.eos_token_id", 0, int.MaxValue),
            PadTokenId = gguf.GetInt32("tokenizer.ggml.padding_token_id", 0, int.MaxValue),
        };
        // An explicit head width (attention.key_length; Qwen3 always has one) instead of hidden/heads.
        if (!gpt2 && gguf.GetInt32($"{arch}.attention.key_length", 1, 1 << 16) is { } keyLength)
        {
            int valueLength = gguf.GetInt32($"{arch}.attention.value_length", 1, 1 << 16) ?? keyLength;
            if (valueLength != keyLength)
                throw new PargsException($"{path}: {arch}.attention.value_length {valueLength} differs from key_length {keyLength}; Pargs' attention has one head size");
            if (keyLength != config.HeadDim || arch == "qwen3") config = config with { HeadDim = keyLength };
        }
        if (arch == "qwen3")
        {
            // transformers' Qwen3 has q/k norms always and attention_bias on q/k/v and o_proj together; llama.cpp's has no o_proj bias.
            if (config.AttentionBias)
                throw new PargsException($"{path}: tensor \"blk.0.attn_q.bias\": q/k/v biases without an o_proj bias are not a Qwen3 attention Pargs computes");
            config = config with { QkNorm = true };
        }
        config = config.Validate(path);
        // llama.cpp's rope scaling keys: linear maps onto rope_scaling; anything else would be ignored, so it is refused.
        if (!gpt2 && gguf.GetString($"{arch}.rope.scaling.type") is { } scalingType && scalingType != "none")
        {
            double factor = gguf.GetNumber($"{arch}.rope.scaling.factor") ?? 1.0;
            if (scalingType != "linear")
                throw new PargsException($"{path}: GGUF metadata {arch}.rope.scaling.type = \"{scalingType}\" is not supported for model_type \"{modelType}\" (Pargs reads \"linear\"; load the Hugging Face folder instead)");
            if (factor != 1.0) config = config with { RopeScaling = new RopeScaling { Type = "linear", Factor = factor } };
        }
        // Llama 3.x: the llama3 rope scaling as llama.cpp's converter writes it, one divisor per rotary frequency.
        if (gguf.Find(LlamaGguf.RopeFreqsTensor) is not null)
        {
            if (arch != "llama")
                throw new PargsException($"{path}: tensor \"{LlamaGguf.RopeFreqsTensor}\" in a GGUF of architecture \"{arch}\" is not supported (Pargs reads it for \"llama\")");
            config = LlamaGguf.WithRopeFreqs(gguf, config).Validate(path);
        }
        // Families with their own GGUF reading (partial rotary, LongRoPE, LayerNorm with rotary) finish the config themselves.
        if (GgufConverter.Families[modelType].FromGgufConfig is { } familyConfig) return familyConfig(gguf, config).Validate(path);
        if (!gpt2 && gguf.GetInteger($"{arch}.rope.dimension_count") is { } ropeDims && ropeDims != config.HeadDim)
            throw new PargsException($"{path}: {arch}.rope.dimension_count {ropeDims} differs from the head size {config.HeadDim}; partial rotary is not supported");
        if (!gpt2 && modelType != "llama" && gguf.Find("blk.0.attn_output.bias") is not null)
            throw new PargsException($"{path}: tensor \"blk.0.attn_output.bias\": an attention output bias is not supported for {arch}");
        return config;
    }

    [GeneratedRegex(@"^blk\.(\d+)\.(.+)$")]
    private static partial Regex BlockTensor();

    /// <summary>llama.cpp tensor name → transformers LlamaForCausalLM name, or null when there is none.</summary>
    public static string? HuggingFaceName(string ggufName) => HuggingFaceName(GgufConverter.Families["llama"], ggufName)?.Name;

    /// <summary>llama.cpp tensor name → the family's transformers name and whether the matrix is stored transposed (GPT-2's Conv1D).</summary>
    internal static (string Name, bool Transpose)? HuggingFaceName(GgufConverter.GgufFamily family, string ggufName)
    {
        var m = BlockTensor().Match(ggufName);
        string generic = m.Success ? "blk.{i}." + m.Groups[2].Value : ggufName;
        foreach (var (hf, gguf, transpose) in family.Tensors)
            if (gguf == generic) return (m.Success ? hf.Replace("{i}", m.Groups[1].Value) : hf, transpose);
        return null;
    }

    /// <summary>The SentencePiece-style vocabulary a GGUF carries (tokenizer.ggml.*), for building a tokenizer.</summary>
    public static (string[] Pieces, float[] Scores, int[]? TokenTypes, int? Bos, int? Eos) ReadVocabulary(GgufFile gguf)
    {
        if (gguf.GetString("tokenizer.ggml.model") is { } model && model != "llama")
            throw new PargsException($"{gguf.Path}: tokenizer.ggml.model \"{model}\": Pargs reads only SentencePiece (\"llama\") vocabularies from GGUF; pass the model's tokenizer.json with --tokenizer");
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
