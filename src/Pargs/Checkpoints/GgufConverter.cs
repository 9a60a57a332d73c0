using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Pargs.Models;
using Pargs.Rewards;
using Pargs.Tokenizers;
using TorchSharp;

namespace Pargs.Checkpoints;

/// <summary>The tensor types <c>pargs convert --to gguf</c> writes (llama.cpp's file types: most matrices in this type).</summary>
public enum GgufOutputType { F32, F16, BF16, Q8_0, Q4_0, Q4_K_M }

/// <summary>
/// Converts any checkpoint Pargs loads (Hugging Face folder, GGUF, llama2.c) into a GGUF v3 file that
/// llama.cpp loads: llama.cpp's architecture name, tensor names and metadata keys, q/k rows in Meta's
/// interleaved rotary layout where llama.cpp's architecture rotates pairs (llama), and the tokenizer as
/// llama.cpp's vocabulary loader wants it (<see cref="GgufVocabulary"/>). What llama.cpp's HF converter
/// does for these families, written from the format, not from its code.
/// </summary>
public static class GgufConverter
{
    /// <summary>
    /// How one Hugging Face model type becomes a llama.cpp architecture: the ONE table of names
    /// (it can move into the family declarations as a whole). <c>{i}</c> stands for the layer index.
    /// </summary>
    public sealed record GgufFamily(
        string Architecture,
        // llama.cpp's "llama" rotates interleaved pairs (Meta's layout); "qwen2" rotates halves as HF does.
        bool MetaRotaryLayout,
        // LayerNorm (GPT-2) writes attention.layer_norm_epsilon; RMSNorm writes attention.layer_norm_rms_epsilon.
        bool LayerNorm,
        IReadOnlyList<(string HuggingFace, string Gguf, bool Transpose)> Tensors,
        // Gemma: llama.cpp stores every RMSNorm weight as 1 + w (transformers' Gemma norms multiply by 1 + w).
        bool NormWeightsPlusOne = false,
        // Keys the architecture reads beyond the shared ones (and refusals of what it cannot express).
        Action<GgufWriter, ModelConfig, string>? ExtraMetadata = null)
    {
        /// <summary>Rotated dimensions per head written as rope.dimension_count (null = head_dim; partial rotary families set it).</summary>
        public Func<ModelConfig, int>? RotaryDims { get; init; }
        /// <summary>The rope_scaling types this architecture carries in GGUF (any other is refused).</summary>
        public IReadOnlyList<string> RopeScalingTypes { get; init; } = [];
        /// <summary>Family-specific checks before writing (throws a <see cref="PargsException"/>) and notes for the report.</summary>
        public Func<ModelConfig, string, IEnumerable<string>>? Check { get; init; }
        /// <summary>Metadata keys only this architecture has, written after the shared ones.</summary>
        public Action<GgufWriter, ModelConfig>? WriteMetadata { get; init; }
        /// <summary>float32 tensors computed from the config rather than stored (e.g. LongRoPE's factors), by llama.cpp name.</summary>
        public Func<ModelConfig, IEnumerable<(string Name, float[] Values)>>? ConfigTensors { get; init; }
        /// <summary>A tensor's re-layout on its way into the GGUF, given its llama.cpp name (e.g. GPT-NeoX's per-head qkv rows).</summary>
        public Func<string, torch.Tensor, ModelConfig, torch.Tensor>? ToGgufLayout { get; init; }
        /// <summary>The reverse of <see cref="ToGgufLayout"/>, for loading a GGUF.</summary>
        public Func<string, torch.Tensor, ModelConfig, torch.Tensor>? FromGgufLayout { get; init; }
        /// <summary>
        /// Loading a GGUF: the family's config from the generic one <see cref="GgufCheckpoint"/> read (its own settings,
        /// biases, rotary) and the file; the names of <see cref="ConfigTensors"/> are read here, not as weights.
        /// </summary>
        public Func<GgufFile, ModelConfig, ModelConfig>? FromGgufConfig { get; init; }
    }

    static readonly (string, string, bool)[] LlamaTensors =
    [
        ("model.embed_tokens.weight", "token_embd.weight", false),
        ("model.norm.weight", "output_norm.weight", false),
        ("lm_head.weight", "output.weight", false),
        ("model.layers.{i}.input_layernorm.weight", "blk.{i}.attn_norm.weight", false),
        ("model.layers.{i}.self_attn.q_proj.weight", "blk.{i}.attn_q.weight", false),
        ("model.layers.{i}.self_attn.q_proj.bias", "blk.{i}.attn_q.bias", false),
        ("model.layers.{i}.self_attn.k_proj.weight", "blk.{i}.attn_k.weight", false),
        ("model.layers.{i}.self_attn.k_proj.bias", "blk.{i}.attn_k.bias", false),
        ("model.layers.{i}.self_attn.v_proj.weight", "blk.{i}.attn_v.weight", false),
        ("model.layers.{i}.self_attn.v_proj.bias", "blk.{i}.attn_v.bias", false),
        ("model.layers.{i}.self_attn.o_proj.weight", "blk.{i}.attn_output.weight", false),
        ("model.layers.{i}.self_attn.o_proj.bias", "blk.{i}.attn_output.bias", false),
        ("model.layers.{i}.post_attention_layernorm.weight", "blk.{i}.ffn_norm.weight", false),
        ("model.layers.{i}.mlp.gate_proj.weight", "blk.{i}.ffn_gate.weight", false),
        ("model.layers.{i}.mlp.up_proj.weight", "blk.{i}.ffn_up.weight", false),
        ("model.layers.{i}.mlp.down_proj.weight", "blk.{i}.ffn_down.weight", false),
    ];

    // Qwen3: Llama's tensors plus an RMSNorm over each head of q and k (llama.cpp's attn_q_norm / attn_k_norm).
    static readonly (string, string, bool)[] Qwen3Tensors =
    [
        .. LlamaTensors,
        ("model.layers.{i}.self_attn.q_norm.weight", "blk.{i}.attn_q_norm.weight", false),
        ("model.layers.{i}.self_attn.k_norm.weight", "blk.{i}.attn_k_norm.weight", false),
    ];

    // GPT-2's Conv1D stores weights [in, out]; llama.cpp wants [out, in] like every other matrix.
    static readonly (string, string, bool)[] Gpt2Tensors =
    [
        ("transformer.wte.weight", "token_embd.weight", false),
        ("transformer.wpe.weight", "position_embd.weight", false),
        ("transformer.ln_f.weight", "output_norm.weight", false),
        ("transformer.ln_f.bias", "output_norm.bias", false),
        ("lm_head.weight", "output.weight", false),
        ("transformer.h.{i}.ln_1.weight", "blk.{i}.attn_norm.weight", false),
        ("transformer.h.{i}.ln_1.bias", "blk.{i}.attn_norm.bias", false),
        ("transformer.h.{i}.attn.c_attn.weight", "blk.{i}.attn_qkv.weight", true),
        ("transformer.h.{i}.attn.c_attn.bias", "blk.{i}.attn_qkv.bias", false),
        ("transformer.h.{i}.attn.c_proj.weight", "blk.{i}.attn_output.weight", true),
        ("transformer.h.{i}.attn.c_proj.bias", "blk.{i}.attn_output.bias", false),
        ("transformer.h.{i}.ln_2.weight", "blk.{i}.ffn_norm.weight", false),
        ("transformer.h.{i}.ln_2.bias", "blk.{i}.ffn_norm.bias", false),
        ("transformer.h.{i}.mlp.c_fc.weight", "blk.{i}.ffn_up.weight", true),
        ("transformer.h.{i}.mlp.c_fc.bias", "blk.{i}.ffn_up.bias", false),
        ("transformer.h.{i}.mlp.c_proj.weight", "blk.{i}.ffn_down.weight", true),
        ("transformer.h.{i}.mlp.c_proj.bias", "blk.{i}.ffn_down.bias", false),
    ];

    /// <summary>HF <c>model_type</c> → llama.cpp architecture (Mistral without a sliding window is llama.cpp's "llama").</summary>
    public static readonly IReadOnlyDictionary<string, GgufFamily> Families = new Dictionary<string, GgufFamily>(StringComparer.Ordinal)
    {
        ["llama"] = new("llama", MetaRotaryLayout: true, LayerNorm: false, LlamaTensors)
        {
            // Llama 3.x's rope_scaling travels as llama.cpp's rope_freqs tensor (LlamaGguf).
            RopeScalingTypes = ["llama3", "longrope"],
            ConfigTensors = config => Models.Families.Llama.LlamaGguf.RopeFreqs(config, "pargs convert") is { } divisors
                ? [(Models.Families.Llama.LlamaGguf.RopeFreqsTensor, divisors)] : [],
        },
        ["mistral"] = new("llama", MetaRotaryLayout: true, LayerNorm: false, LlamaTensors),
        ["qwen2"] = new("qwen2", MetaRotaryLayout: false, LayerNorm: false, LlamaTensors),
        ["gpt2"] = new("gpt2", MetaRotaryLayout: false, LayerNorm: true, Gpt2Tensors),
        ["qwen3"] = new("qwen3", MetaRotaryLayout: false, LayerNorm: false, Qwen3Tensors) { Check = RefuseQwen3AttentionBias },
        ["gemma2"] = new("gemma2", MetaRotaryLayout: false, LayerNorm: false, Models.Families.Gemma.GemmaGguf.Gemma2Tensors,
            NormWeightsPlusOne: true, ExtraMetadata: Models.Families.Gemma.GemmaGguf.WriteMetadata),
        ["gemma3_text"] = new("gemma3", MetaRotaryLayout: false, LayerNorm: false, Models.Families.Gemma.GemmaGguf.Gemma3Tensors,
            NormWeightsPlusOne: true, ExtraMetadata: Models.Families.Gemma.GemmaGguf.WriteMetadata),
        ["phi3"] = Models.Families.Phi3.Phi3Gguf.Family,
        ["gpt_neox"] = Models.Families.GptNeoX.GptNeoXGguf.Family,
    };

    /// <summary>
    /// transformers' Qwen3 puts attention_bias on q/k/v and o_proj together; llama.cpp's "qwen3" has no o_proj bias, so a
    /// file with one would not load there (and one without it would compute something else).
    /// </summary>
    static IEnumerable<string> RefuseQwen3AttentionBias(ModelConfig config, string path)
    {
        if (config.AttentionOutputBias)
            throw new PargsException($"{path}: attention_bias true (qwen3) is not converted to GGUF: llama.cpp's \"qwen3\" architecture has no o_proj bias");
        return [];
    }

    /// <summary>Parses <c>--type</c>; quantized types are refused by name until their quantizers land.</summary>
    public static GgufOutputType ParseType(string type) => type.ToLowerInvariant() switch
    {
        "f32" => GgufOutputType.F32,
        "f16" => GgufOutputType.F16,
        "bf16" => GgufOutputType.BF16,
        "q8_0" => GgufOutputType.Q8_0,
        "q4_0" => GgufOutputType.Q4_0,
        "q4_k" or "q4_k_m" => GgufOutputType.Q4_K_M, // llama-quantize's Q4_K is its Q4_K_M mixture
        "q4_1" or "q5_0" or "q5_1" or "q2_k" or "q3_k" or "q4_k_s" or "q5_k" or "q5_k_s" or "q5_k_m" or "q6_k" =>
            throw new PargsException($"--type {type.ToLowerInvariant()} is not supported yet (pargs convert writes f32, f16, bf16, q8_0, q4_0 and q4_k)"),
        _ => throw new PargsException($"--type {type}: unknown tensor type (expected f32, f16, bf16, q8_0, q4_0 or q4_k)"),
    };

    /// <summary>Loads <paramref name="modelPath"/>, converts it and writes <paramref name="outPath"/> atomically.</summary>
    public static GgufConversionSummary Convert(string modelPath, string outPath, GgufOutputType type)
    {
        using var contents = CheckpointLoader.Load(modelPath);
        FamilyOf(contents); // refusals first: a reward model needs no tokenizer to be refused
        var (window, notes) = CheckHuggingFaceConfig(contents);
        var vocabulary = GgufVocabulary.ForCheckpoint(contents);
        var writer = Build(contents, vocabulary, type, Path.GetFileName(Path.GetFullPath(modelPath).TrimEnd(Path.DirectorySeparatorChar)), window);
        writer.Save(outPath);
        return new GgufConversionSummary(Families[contents.Config.ModelType].Architecture, writer.TensorCount, new FileInfo(outPath).Length, notes);
    }

    /// <summary>
    /// config.json fields that change the computation but have no place in what this converter writes:
    /// RoPE scaling is refused; a sliding window shorter than the context caps context_length at the window
    /// (llama.cpp's llama/qwen2 architectures attend to everything, which is the same within the window).
    /// </summary>
    static (int? ContextLimit, List<string> Notes) CheckHuggingFaceConfig(CheckpointContents contents)
    {
        var notes = new List<string>();
        if (contents.Format != "hf-folder") return (null, notes);
        string path = Path.Combine(contents.Source, HuggingFaceFolder.ConfigFile);
        var json = Pargs.Json.CheckedJson.ReadFile(path).AsObject();
        string modelType = contents.Config.ModelType;
        var family = Families[modelType];
        notes.AddRange(family.Check?.Invoke(contents.Config, path) ?? []);
        bool carried = contents.Config.RopeScaling is { } parsed && family.RopeScalingTypes.Contains(parsed.Type);
        if (json["rope_scaling"] is System.Text.Json.Nodes.JsonObject scaling && !carried)
            throw new PargsException($"{path}: rope_scaling {scaling.ToJsonString()} ({modelType}) is not converted to GGUF yet");
        if (json["rope_parameters"] is System.Text.Json.Nodes.JsonObject parameters && parameters["rope_type"]?.ToString() is { } ropeType && ropeType != "default" && !carried)
            throw new PargsException($"{path}: rope_parameters.rope_type \"{ropeType}\" ({modelType}) is not converted to GGUF yet");
        bool windowed = modelType == "mistral" || (modelType == "qwen2" && json["use_sliding_window"]?.GetValueKind() == System.Text.Json.JsonValueKind.True);
        if (windowed && json["sliding_window"] is System.Text.Json.Nodes.JsonValue w && w.TryGetValue<int>(out int window) && window < contents.Config.MaxPositions)
        {
            if (window <= 0) throw new PargsException($"{path}: sliding_window {window} must be positive");
            notes.Add($"sliding_window {window}: written as {Families[modelType].Architecture}.context_length {window} (llama.cpp's \"{Families[modelType].Architecture}\" has no sliding window; within {window} tokens attention is the same)");
            return (window, notes);
        }
        return (null, notes);
    }

    /// <summary>
    /// Tensors produced one at a time while the file is written, instead of <see cref="CheckpointContents.Tensors"/>:
    /// a checkpoint too large to hold in float32 (an 8B shape is 32 GB) is converted holding one tensor at a time.
    /// <see cref="Load"/>'s tensor is disposed once written.
    /// </summary>
    public sealed record StreamedTensors(IReadOnlyList<(string Name, long[] Shape)> Shapes, Func<string, torch.Tensor> Load);

    /// <summary>
    /// The GGUF for <paramref name="contents"/> (or for <paramref name="streamed"/>'s tensors, with contents giving the
    /// config and vocabulary); tensors are encoded while the file is written.
    /// </summary>
    public static GgufWriter Build(CheckpointContents contents, GgufVocabulary vocabulary, GgufOutputType type, string name, int? contextLength = null,
                                   StreamedTensors? streamed = null)
    {
        var config = contents.Config;
        string source = contents.Source;
        var family = FamilyOf(contents);

        var writer = new GgufWriter();
        string arch = family.Architecture;
        writer.Set("general.architecture", GgufValue.String(arch));
        writer.Set("general.name", GgufValue.String(name));
        // llama_ftype: ALL_F32 0, MOSTLY_F16 1, MOSTLY_Q4_0 2, MOSTLY_Q8_0 7, MOSTLY_Q4_K_M 15, MOSTLY_BF16 32.
        writer.Set("general.file_type", GgufValue.U32(type switch
        {
            GgufOutputType.F32 => 0u, GgufOutputType.F16 => 1u, GgufOutputType.Q4_0 => 2u, GgufOutputType.Q8_0 => 7u, GgufOutputType.Q4_K_M => 15u, _ => 32u,
        }));
        writer.Set($"{arch}.context_length", GgufValue.U32(checked((uint)(contextLength ?? config.MaxPositions))));
        writer.Set($"{arch}.embedding_length", GgufValue.U32(checked((uint)config.HiddenSize)));
        writer.Set($"{arch}.block_count", GgufValue.U32(checked((uint)config.NumLayers)));
        writer.Set($"{arch}.feed_forward_length", GgufValue.U32(checked((uint)config.IntermediateSize)));
        writer.Set($"{arch}.attention.head_count", GgufValue.U32(checked((uint)config.NumHeads)));
        if (family.LayerNorm)
            writer.Set($"{arch}.attention.layer_norm_epsilon", GgufValue.F32((float)config.NormEps));
        else
        {
            writer.Set($"{arch}.attention.head_count_kv", GgufValue.U32(checked((uint)config.NumKvHeads)));
            writer.Set($"{arch}.rope.freq_base", GgufValue.F32((float)config.RopeTheta));
            writer.Set($"{arch}.rope.dimension_count", GgufValue.U32(checked((uint)(family.RotaryDims?.Invoke(config) ?? config.HeadDim))));
            writer.Set($"{arch}.attention.layer_norm_rms_epsilon", GgufValue.F32((float)config.NormEps));
        }
        writer.Set($"{arch}.vocab_size", GgufValue.U32(checked((uint)config.VocabSize)));
        family.ExtraMetadata?.Invoke(writer, config, source);
        family.WriteMetadata?.Invoke(writer, config);
        // A head width other than hidden/heads (config.json's head_dim; Qwen3's is 128 whatever the width) is llama.cpp's
        // key/value length; without it llama.cpp would split the heads at hidden/heads.
        if (!family.LayerNorm && config.HeadDim * config.NumHeads != config.HiddenSize && !writer.Keys.Contains($"{arch}.attention.key_length"))
        {
            writer.Set($"{arch}.attention.key_length", GgufValue.U32(checked((uint)config.HeadDim)));
            writer.Set($"{arch}.attention.value_length", GgufValue.U32(checked((uint)config.HeadDim)));
        }
        vocabulary.WriteTo(writer, config.VocabSize, source);
        foreach (var (ggufName, values) in family.ConfigTensors?.Invoke(config) ?? [])
        {
            var bytes = new byte[values.Length * 4];
            Encode(values, GgmlType.F32, bytes);
            writer.AddTensor(ggufName, [values.Length], GgmlType.F32, bytes);
        }

        if (IsRewardModel(contents))
        {
            // A scalar reward model: the backbone as an LM's, the head as llama.cpp's classifier output (kept float32, as
            // Pargs computes it). llama.cpp itself refuses the extra tensor in a "llama"/"qwen2" file; Pargs reads it back
            // (RewardModel.LoadForInference). The objective decides where a reward is read, so it travels along.
            string objective = "";
            if (contents.Format == "hf-folder" && Rewards.RewardModel.ReadObjective(contents.Source) is { } o) objective = o.ToConfigValue();
            writer.Set(RewardObjectiveKey, GgufValue.String(objective));
        }
        var shapes = streamed?.Shapes.ToDictionary(s => s.Name, s => s.Shape, StringComparer.Ordinal)
                     ?? contents.Tensors.ToDictionary(p => p.Key, p => p.Value.shape, StringComparer.Ordinal);
        // The tensor to write: the checkpoint's (kept), or a streamed one made now and disposed once written.
        Action<Stream> Writing(string hfName, Action<Stream, torch.Tensor> write) => stream =>
        {
            if (streamed is null) { write(stream, contents.Tensors[hfName]); return; }
            using var made = streamed.Load(hfName);
            write(stream, made);
        };
        foreach (var hfName in OrderedNames(shapes.Keys, contents.Config, family))
        {
            var tensorShape = shapes[hfName];
            if (hfName == "score.weight")
            {
                writer.AddTensor(StoredCheckpoint.GgufScoreTensor, tensorShape, GgmlType.F32, Writing(hfName, (stream, head) => WriteTensor(stream, head, false, null, GgmlType.F32)));
                continue;
            }
            string ggufName = GgufName(family, hfName)
                ?? throw new PargsException($"{source}: tensor \"{hfName}\" has no llama.cpp \"{arch}\" counterpart; pargs convert cannot place it");
            bool transpose = Transposed(family, hfName);
            int? rotaryHeads = !family.MetaRotaryLayout ? null
                : hfName.Contains(".self_attn.q_proj.", StringComparison.Ordinal) ? config.NumHeads
                : hfName.Contains(".self_attn.k_proj.", StringComparison.Ordinal) ? config.NumKvHeads
                : null;
            long[] shape = transpose ? [tensorShape[1], tensorShape[0]] : tensorShape;
            // llama.cpp's converter keeps vectors (norms, biases) in float32 whatever the file type.
            var tensorType = shape.Length <= 1 ? GgmlType.F32 : type switch
            {
                GgufOutputType.F16 => GgmlType.F16,
                GgufOutputType.BF16 => GgmlType.BF16,
                GgufOutputType.Q8_0 or GgufOutputType.Q4_0 or GgufOutputType.Q4_K_M => GgufQuantization.TypeOf(ggufName, shape, type, config.TieWordEmbeddings, source, config.NumLayers),
                _ => GgmlType.F32,
            };
            bool plusOne = family.NormWeightsPlusOne && hfName.EndsWith("norm.weight", StringComparison.Ordinal);
            var layout = family.ToGgufLayout is { } relayout ? (Func<torch.Tensor, torch.Tensor>)(x => relayout(ggufName, x, config)) : null;
            writer.AddTensor(ggufName, shape, tensorType, Writing(hfName, (stream, t) => WriteTensor(stream, t, transpose, rotaryHeads, tensorType, plusOne, layout)));
        }
        return writer;
    }

    /// <summary>The family's row of the table, or a refusal naming what cannot be converted.</summary>
    static GgufFamily FamilyOf(CheckpointContents contents)
    {
        if (IsRewardModel(contents) && !StoredCheckpoint.HasStoredKernel(contents.Config))
            throw new PargsException($"{contents.Source}: {contents.Architecture ?? "this checkpoint"} is a reward model (score head); pargs convert writes reward models of the llama, mistral, qwen2 and qwen3 families only (llama.cpp has no reward-model architecture)");
        if (IsRewardModel(contents) && contents.Tensors.Count > 0 && !contents.Tensors.ContainsKey("score.weight")) // (streamed: no tensors held)
            throw new PargsException($"{contents.Source}: {contents.Architecture} has no score head (score.weight)");
        return Families.TryGetValue(contents.Config.ModelType, out var family) ? family
            : throw new PargsException($"{contents.Source}: model_type \"{contents.Config.ModelType}\" has no GGUF conversion yet (pargs convert writes {string.Join(", ", Families.Keys)})");
    }

    /// <summary>A …ForSequenceClassification checkpoint (a scalar reward model).</summary>
    static bool IsRewardModel(CheckpointContents contents)
        => contents.Architecture?.EndsWith("ForSequenceClassification", StringComparison.Ordinal) == true || contents.Tensors.ContainsKey("score.weight");

    /// <summary>
    /// GGUF metadata marking a reward model: its objective as config.json's <c>pargs_objective</c> records it (empty when
    /// none), so a converted reward model reads its reward at the same token (<see cref="Rewards.RewardModel.Readout"/>).
    /// </summary>
    public const string RewardObjectiveKey = "pargs.reward_model.objective";

    /// <summary>Embedding, then blocks in layer order, then the rest: the order llama.cpp's converter writes (readers do not depend on it).</summary>
    static IEnumerable<string> OrderedNames(IEnumerable<string> tensorNames, ModelConfig config, GgufFamily family)
    {
        bool tied = config.TieWordEmbeddings;
        // A tied head is the embedding itself; llama.cpp uses token_embd when output.weight is absent.
        var names = tensorNames.Where(n => !(tied && n == "lm_head.weight")).ToList();
        int Layer(string n) => LayerIndex(n) ?? -1;
        return names
            .OrderBy(n => Layer(n) < 0 ? (n.Contains("embed") || n.Contains("wte") || n.Contains("wpe") ? 0 : 2) : 1)
            .ThenBy(Layer)
            .ThenBy(n => IndexInTable(family, n));
    }

    /// <summary>Where the families' Hugging Face layer names start (Llama-like, GPT-2, GPT-NeoX).</summary>
    static readonly string[] LayerPrefixes = ["model.layers.", "transformer.h.", "gpt_neox.layers."];

    static int? LayerIndex(string hfName)
    {
        foreach (var prefix in LayerPrefixes)
            if (hfName.StartsWith(prefix, StringComparison.Ordinal))
            {
                int end = hfName.IndexOf('.', prefix.Length);
                if (end > prefix.Length && int.TryParse(hfName.AsSpan(prefix.Length, end - prefix.Length), out int i)) return i;
            }
        return null;
    }

    static string Generic(string hfName, out int? layer)
    {
        layer = LayerIndex(hfName);
        if (layer is null) return hfName;
        string prefix = LayerPrefixes.First(p => hfName.StartsWith(p, StringComparison.Ordinal));
        return prefix + "{i}" + hfName[(prefix.Length + layer.Value.ToString().Length)..];
    }

    static int IndexInTable(GgufFamily family, string hfName)
    {
        string generic = Generic(hfName, out _);
        for (int k = 0; k < family.Tensors.Count; k++) if (family.Tensors[k].HuggingFace == generic) return k;
        return int.MaxValue;
    }

    /// <summary>The llama.cpp name of a Hugging Face tensor in <paramref name="family"/>, or null when it has none.</summary>
    public static string? GgufName(GgufFamily family, string hfName)
    {
        string generic = Generic(hfName, out int? layer);
        foreach (var (hf, gguf, _) in family.Tensors)
            if (hf == generic) return layer is { } i ? gguf.Replace("{i}", i.ToString()) : gguf;
        return null;
    }

    static bool Transposed(GgufFamily family, string hfName)
    {
        string generic = Generic(hfName, out _);
        return family.Tensors.Any(t => t.HuggingFace == generic && t.Transpose);
    }

    static void WriteTensor(Stream stream, torch.Tensor tensor, bool transpose, int? rotaryHeads, GgmlType type, bool plusOne = false, Func<torch.Tensor, torch.Tensor>? layout = null)
    {
        using var scope = torch.NewDisposeScope();
        // alias: a handle of our own, so the scope never disposes the checkpoint's tensor.
        var t = tensor.alias();
        if (plusOne) t = t.Plus(1.0);
        if (transpose) t = t.t();
        if (rotaryHeads is { } heads) t = MetaRotaryLayout.FromHuggingFace(t, heads);
        if (layout is not null) t = layout(t);
        t = t.contiguous();
        var values = MemoryMarshal.Cast<byte, float>(t.bytes);
        const int chunk = 1 << 16;
        var buffer = new byte[chunk * 4];
        for (int start = 0; start < values.Length; start += chunk)
        {
            var part = values.Slice(start, Math.Min(chunk, values.Length - start));
            int n = Encode(part, type, buffer);
            stream.Write(buffer, 0, n);
        }
    }

    /// <summary>Encodes float32 values as <paramref name="type"/>, little-endian; returns the bytes written.</summary>
    public static int Encode(ReadOnlySpan<float> values, GgmlType type, Span<byte> output)
    {
        switch (type)
        {
            case GgmlType.F32:
                MemoryMarshal.AsBytes(values).CopyTo(output);
                return values.Length * 4;
            case GgmlType.F16:
                for (int i = 0; i < values.Length; i++) BinaryPrimitives.WriteHalfLittleEndian(output[(2 * i)..], (Half)values[i]);
                return values.Length * 2;
            case GgmlType.BF16:
                for (int i = 0; i < values.Length; i++) BinaryPrimitives.WriteUInt16LittleEndian(output[(2 * i)..], ToBFloat16(values[i]));
                return values.Length * 2;
            case GgmlType.Q8_0 or GgmlType.Q4_0 or GgmlType.Q4_K or GgmlType.Q5_K or GgmlType.Q6_K:
            {
                // ggml's reference quantizers (Weights/), block for block; values is a whole number of rows.
                var format = (Weights.WeightFormat)(uint)type;
                int bytes = (int)Weights.WeightFormats.ByteCount(format, values.Length, $"{type} data");
                Weights.WeightCodec.Encode(format, values, output[..bytes]);
                return bytes;
            }
            default:
                throw new ArgumentOutOfRangeException(nameof(type), type, "only F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q5_K and Q6_K are encoded here");
        }
    }

    /// <summary>float32 → bfloat16 rounding to nearest, ties to even (as ggml does); a NaN stays a quiet NaN.</summary>
    public static ushort ToBFloat16(float value)
    {
        uint bits = BitConverter.SingleToUInt32Bits(value);
        if ((bits & 0x7fffffff) > 0x7f800000) return (ushort)((bits >> 16) | 64);
        return (ushort)((bits + (0x7fff + ((bits >> 16) & 1))) >> 16);
    }
}

/// <summary>What a conversion wrote, for the CLI's one-line report.</summary>
public sealed record GgufConversionSummary(string Architecture, int Tensors, long Bytes, IReadOnlyList<string> Notes);
