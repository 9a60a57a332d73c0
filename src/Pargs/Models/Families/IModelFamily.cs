using System.Text.Json.Nodes;
using static TorchSharp.torch;

namespace Pargs.Models.Families;

/// <summary>
/// Everything Pargs knows about one transformer family, in one place: which config.json <c>model_type</c>s
/// and <c>architectures</c> it answers to, how it reads and writes its config (with transformers' defaults for
/// that model type), how its backbone is built and named, the tensors it holds (declared once: the loader's
/// strict checks and the CPU decode kernel both read this declaration), and which decoding engine and weight
/// layout suit it. Register a new family with <see cref="ModelFamilies.Register"/>; nothing else changes.
/// </summary>
public interface IModelFamily
{
    /// <summary>A short name for messages, e.g. "llama".</summary>
    string Name { get; }

    /// <summary>config.json <c>model_type</c> values this family reads (e.g. llama, mistral, qwen2).</summary>
    IReadOnlyList<string> ModelTypes { get; }

    /// <summary>Hugging Face's name for the backbone inside a …ForCausalLM: "model" (Llama) or "transformer" (GPT-2).</summary>
    string HuggingFacePrefix { get; }

    /// <summary>The …ForCausalLM architecture name transformers uses for <paramref name="config"/>'s model type.</summary>
    string CausalLMArchitecture(ModelConfig config);

    /// <summary>The …ForSequenceClassification architecture name for <paramref name="config"/>'s model type.</summary>
    string SequenceClassificationArchitecture(ModelConfig config);

    /// <summary>Every architecture name (config.json <c>architectures[0]</c>) a checkpoint of this family may carry.</summary>
    IReadOnlyList<string> Architectures { get; }

    /// <summary>
    /// Reads config.json (already parsed) with this model type's own defaults; a field that would change the
    /// computation and is not implemented is refused with a <see cref="PargsException"/> naming field, value and model type.
    /// </summary>
    ModelConfig ReadConfig(JsonObject json, string source);

    /// <summary>
    /// The config.json fields this family knows for <paramref name="modelType"/>, each honoured, refused unless it
    /// has the default value, or irrelevant to inference (docs and the fidelity test walk this table).
    /// </summary>
    IReadOnlyList<ConfigField> ConfigFields(string modelType);

    /// <summary>Writes the family's fields of config.json (architectures, model_type and the shared token ids are written by the caller).</summary>
    void WriteConfig(ModelConfig config, JsonObject json);

    /// <summary>Family-specific checks beyond <see cref="ModelConfig.Validate"/>; throws a <see cref="PargsException"/>.</summary>
    void Validate(ModelConfig config, string source) { }

    /// <summary>A fresh backbone (TorchSharp modules under Hugging Face names).</summary>
    TransformerBackbone CreateBackbone(ModelConfig config);

    /// <summary>
    /// The backbone's tensors, names relative to <see cref="HuggingFacePrefix"/>: what a checkpoint must hold and
    /// what the modules register (tested to agree).
    /// </summary>
    IReadOnlyList<TensorSpec> BackboneTensors(ModelConfig config);

    /// <summary>
    /// Puts a checkpoint's tensor names into the form the family's modules use (e.g. GPT-2 Hub files without
    /// the "transformer." prefix); the default leaves them as they are.
    /// </summary>
    void NormaliseTensorNames(Dictionary<string, Tensor> tensors, ModelConfig config, string? architecture) { }

    /// <summary>
    /// The reverse of <see cref="NormaliseTensorNames"/> for a checkpoint being saved as <paramref name="architecture"/>:
    /// the tensors under the names transformers' class expects (e.g. GPT-NeoX's head is <c>embed_out</c>, not
    /// <c>lm_head</c>); the default leaves them as they are.
    /// </summary>
    IReadOnlyDictionary<string, Tensor> TensorsForSaving(IReadOnlyDictionary<string, Tensor> tensors, ModelConfig config, string architecture) => tensors;

    /// <summary>The CPU decode kernel for <paramref name="backbone"/>, or null when the family decodes through torch only.</summary>
    IDecodeKernel? CreateDecodeKernel(TransformerBackbone backbone) => null;

    /// <summary>
    /// What the family does to the LM head's output before it is a logit (Gemma's final_logit_softcapping); the
    /// default is nothing. A reward model's score head does not pass through it.
    /// </summary>
    Tensor AdjustLogits(Tensor logits, ModelConfig config) => logits;

    /// <summary>
    /// Whether a model that only decodes should store its matrix weights column-major (<see cref="ColumnMajor"/>):
    /// true for families decoded through torch's matrix–vector products, false for one whose decode kernel
    /// reads row-major weights in place.
    /// </summary>
    bool DecodesColumnMajor { get; }

    /// <summary>The config fields this family honours with their values, for <c>pargs info</c>.</summary>
    IEnumerable<(string Field, object? Value)> DescribeConfig(ModelConfig config);
}
