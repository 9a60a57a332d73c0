using System.Text.Json;
using System.Text.Json.Serialization;

namespace Pargs.Evaluation;

/// <summary>
/// One generation, one JSONL line. AlpacaEval's fields (<c>instruction</c>, <c>output</c>, <c>generator</c>) so
/// its tools read our files, plus ours: <c>prompt_id</c>, <c>method</c>, <c>k</c>, <c>w</c>, <c>seed</c>,
/// <c>reward</c> (the gold reward if already scored, else null), <c>tokens</c> generated, wall-clock
/// <c>seconds</c>. Unknown fields are kept in <see cref="Extra"/> and written back unchanged.
/// </summary>
public sealed record GenerationRecord
{
    /// <summary>The prompt as given to the model.</summary>
    [JsonPropertyName("instruction")] public string Instruction { get; init; } = "";
    /// <summary>The continuation only (without the prompt).</summary>
    [JsonPropertyName("output")] public string Output { get; init; } = "";
    /// <summary>AlpacaEval's model/run name, e.g. <c>stories260K/pargs</c>.</summary>
    [JsonPropertyName("generator")] public string? Generator { get; init; }
    /// <summary>Pairs generations of the same prompt across methods; falls back to the instruction text.</summary>
    [JsonPropertyName("prompt_id")] public string? PromptId { get; init; }
    [JsonPropertyName("method")] public string? Method { get; init; }
    [JsonPropertyName("k")] public int? K { get; init; }
    [JsonPropertyName("w")] public double? W { get; init; }
    [JsonPropertyName("seed")] public long? Seed { get; init; }
    [JsonPropertyName("reward")] public double? Reward { get; init; }
    [JsonPropertyName("tokens")] public int Tokens { get; init; }
    /// <summary>Wall-clock seconds of the row (its batch's time shared by its rows); null when the run was asked not to
    /// record timings (`generate --no-timings`), so that two runs of one job write byte-identical files.</summary>
    [JsonPropertyName("seconds"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public double? Seconds { get; init; }

    /// <summary>Written by evaluation with a base LM: log p of each continuation token given the prompt, as perplexity
    /// reads them. Kept per record so that shards of an evaluation (`eval --shard`) join into the same table.</summary>
    [JsonPropertyName("perplexity_logprobs"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public double[]? PerplexityLogProbs { get; init; }
    /// <summary>Written by evaluation with a base LM: cosine of the prompt's and the continuation's embeddings.</summary>
    [JsonPropertyName("coherence"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public double? Coherence { get; init; }
    /// <summary>
    /// Σ_t log π(y_t | x, y&lt;t) of the generated tokens (and the EOS that ended them) under the distribution the
    /// method sampled from, where the method defines one per token (top-k, PARGS, FaRMA, GenARM, a DPO policy's
    /// top-k); null otherwise. With <see cref="BaseLogProb"/> it gives a per-sample estimate of KL(π ‖ p_base).
    /// </summary>
    [JsonPropertyName("policy_logprob")] public double? PolicyLogProb { get; init; }
    /// <summary>Σ_t log p_base(y_t | x, y&lt;t) of the same tokens under the base LM (full softmax, T = 1); null where <see cref="PolicyLogProb"/> is.</summary>
    [JsonPropertyName("base_logprob")] public double? BaseLogProb { get; init; }

    [JsonExtensionData] public Dictionary<string, JsonElement>? Extra { get; set; }

    /// <summary>The pairing key for win rates: <see cref="PromptId"/>, else the instruction text.</summary>
    [JsonIgnore] public string PromptKey => PromptId ?? Instruction;

    /// <summary>log π(y) − log p_base(y): one sample's estimate of KL(π ‖ p_base) (its mean over samples y ~ π is unbiased); null without both.</summary>
    [JsonIgnore] public double? KlToBase => PolicyLogProb is { } p && BaseLogProb is { } b ? p - b : null;

    /// <summary>The method name used for grouping: <see cref="Method"/>, else <see cref="Generator"/>.</summary>
    [JsonIgnore] public string MethodName => Method ?? Generator ?? "";
}
