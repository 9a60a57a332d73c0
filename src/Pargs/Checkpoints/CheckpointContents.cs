using Pargs.Models;
using Pargs.Tokenizers;
using TorchSharp;

namespace Pargs.Checkpoints;

/// <summary>
/// What a checkpoint holds before it becomes a module: the shape, float32 tensors under Hugging Face
/// parameter names (whatever the file format), and the tokenizer when the file carries one.
/// Every reader (HF folder, GGUF, llama2.c) produces this, so models load one way.
/// </summary>
public sealed class CheckpointContents : IDisposable
{
    public required ModelConfig Config { get; init; }
    /// <summary>HF names (<c>model.layers.0.self_attn.q_proj.weight</c>, <c>lm_head.weight</c>, <c>score.weight</c>…), float32, CPU.</summary>
    public required Dictionary<string, torch.Tensor> Tensors { get; init; }
    public ITokenizer? Tokenizer { get; init; }
    /// <summary>Where it came from, for error messages.</summary>
    public required string Source { get; init; }
    /// <summary>hf-folder, gguf, llama2c.</summary>
    public required string Format { get; init; }
    /// <summary>Defaults from generation_config.json, when present.</summary>
    public GenerationDefaults? Generation { get; init; }
    /// <summary>HF <c>architectures[0]</c> when the file names one (e.g. LlamaForSequenceClassification).</summary>
    public string? Architecture { get; init; }

    public void Dispose()
    {
        foreach (var t in Tensors.Values) t.Dispose();
        Tensors.Clear();
    }
}

/// <summary>The generation_config.json fields Pargs honours.</summary>
public sealed record GenerationDefaults(double? Temperature, int? TopK, double? TopP, int? MaxNewTokens, int[]? EosTokenIds);
