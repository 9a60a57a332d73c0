using Pargs.Decoding.Methods;

namespace Pargs.Decoding;

/// <summary>
/// Settings of one generation run that every method shares; the method and its own options record
/// (<see cref="Methods.IMethodOptions"/>: k, w, temperature, …) ride in <see cref="Method"/>.
/// </summary>
public sealed record DecodingOptions
{
    /// <summary>The method with its options, e.g. <c>new PargsOptions { K = 10, W = 2 }</c> (default: top-k, k = 10).</summary>
    public IMethodOptions Method { get; init; } = new TopKOptions();
    public int Seed { get; init; }
    public int MaxNewTokens { get; init; } = 64;
    /// <summary>Generation stops (and the text is cut) when a row's text contains one of these.</summary>
    public IReadOnlyList<string> StopStrings { get; init; } = Array.Empty<string>();
    /// <summary>Stop at EOS (the tokenizer's or the config's).</summary>
    public bool StopAtEos { get; init; } = true;
    /// <summary>Prompts run together; rows finish independently.</summary>
    public int BatchSize { get; init; } = 8;
    /// <summary>
    /// Batches decoded at once, each on its own thread, each taking the next batch of prompts when it finishes (1 = one
    /// batch after another). Rows in flight = <see cref="BatchSize"/> × Decoders. WHY: a batch advances in lockstep — a
    /// step waits for every row's answers — so against a remote engine one batch leaves the server idle while it scores
    /// and chooses, and itself idle while the server steps; batches that do not wait for each other keep both busy
    /// (with <c>BatchSize = 1</c>, every row progresses on its own). A batch is decoded exactly as it is alone, so the
    /// output is the same for any count (<see cref="TextGenerator"/>).
    /// </summary>
    public int Decoders { get; init; } = 1;
    /// <summary>
    /// Which engine computes the steps: the cached local engine, or the cache-free reference
    /// (<see cref="Engine.RecomputeEngine"/>) that exists only as the benchmark baseline and correctness oracle.
    /// </summary>
    public DecodingEngine Engine { get; init; } = DecodingEngine.Cached;
    /// <summary>
    /// Whether the tokenizer adds its special tokens (BOS, what its post-processor adds) to each prompt. False for
    /// prompts rendered by a model's chat template, which writes them itself: transformers' apply_chat_template
    /// tokenizes with add_special_tokens=False, and adding them again would give Llama-3 and Gemma two BOS.
    /// </summary>
    public bool AddSpecialTokens { get; init; } = true;

    /// <summary>The most <see cref="Decoders"/>: each is a thread, and a step request of each is in flight at once.</summary>
    public const int MaxDecoders = 256;

    /// <summary>Checks the options against a vocabulary size; the message names the option.</summary>
    public DecodingOptions Validate(int vocabSize)
    {
        Method.Validate(vocabSize);
        if (MaxNewTokens <= 0) throw new PargsException($"--max-new-tokens must be at least 1, got {MaxNewTokens}");
        if (BatchSize <= 0) throw new PargsException($"--batch-size must be at least 1, got {BatchSize}");
        if (Decoders is < 1 or > MaxDecoders) throw new PargsException($"--decoders must be between 1 and {MaxDecoders}, got {Decoders}");
        if (StopStrings.Any(string.IsNullOrEmpty)) throw new PargsException("--stop: a stop string is empty (it would match before any text)");
        return this;
    }
}

/// <summary>The engines a local model can decode on (see <see cref="Engine.LanguageModelEngine"/>).</summary>
public enum DecodingEngine
{
    /// <summary>KV caches, batched rows, candidates over the reward model's cached prefix.</summary>
    Cached,
    /// <summary>No cache anywhere: the reference algorithm (<c>--naive</c>).</summary>
    Naive,
}
