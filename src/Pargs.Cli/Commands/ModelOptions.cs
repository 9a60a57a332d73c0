using System.CommandLine;
using Pargs.Checkpoints;
using Pargs.Models;
using Pargs.Models.Cpu;
using TorchSharp;

namespace Pargs.Cli.Commands;

/// <summary>Options several commands share: which model, which tokenizer, how many threads.</summary>
public static class ModelOptions
{
    public static Option<string> Model(string description = "Base LM: a Hugging Face folder, a .gguf or a llama2.c .bin (default: the shipped stories260K)")
        => new("--model", "-m") { Description = description };

    public static Option<string> Tokenizer()
        => new("--tokenizer") { Description = "Tokenizer file overriding the one found with the model (tokenizer.json, a .gguf's embedded vocabulary, or llama2.c tokenizer .bin)" };

    public static Option<int> Threads(int byDefault = 1)
        => new("--threads")
        {
            Description = $"CPU threads for torch and Pargs' decode kernels (default {byDefault}{(byDefault == 1 ? ", safe on a shared machine" : "")}; on an idle machine, the number of cores decodes and trains fastest)",
            DefaultValueFactory = _ => byDefault,
        };

    /// <summary>
    /// Loads the LM for decoding (generate, demo) in its fastest decoding layout (<see cref="ColumnMajor.ApplyForDecoding"/>).
    /// With <paramref name="storedPrecision"/>, a GGUF / safetensors Llama-family model is mapped and decoded in its
    /// stored precision (<see cref="CausalLM.LoadForInference"/>). Not for training: TorchSharp's optimizer cannot
    /// save the column-major layout.
    /// </summary>
    public static CausalLM LoadLanguageModel(string? path, string? tokenizer, bool storedPrecision = false)
    {
        path ??= ShippedData.Find(ShippedData.DefaultModel);
        var lm = storedPrecision ? CausalLM.LoadForInference(path, tokenizer) : CausalLM.Load(path, tokenizer);
        if (lm.StoredWeights is null) ColumnMajor.ApplyForDecoding(lm, lm.Config);
        StartupPages.Release(); // before the first forward pages the weights in (docs/benchmarks.md: where the fixed part goes)
        return lm;
    }

    /// <summary>
    /// The LM for a method that reads only the LM (greedy, top-k, top-p) on the host engine, without torch
    /// (<see cref="Pargs.Engine.HostLanguageModel"/>), when the checkpoint is one it serves; null otherwise.
    /// </summary>
    public static Pargs.Engine.HostLanguageModel? LoadHostLanguageModel(string? path, string? tokenizer)
    {
        var lm = Pargs.Engine.HostLanguageModel.TryLoad(path ?? ShippedData.Find(ShippedData.DefaultModel), tokenizer);
        if (lm is not null) StartupPages.Release();
        return lm;
    }

    /// <summary>--kv-cache f32 | f16: how decoding's KV caches store keys and values.</summary>
    public static Option<string> KvCache()
        => new("--kv-cache")
        {
            Description = "KV cache precision: f32 (exact) or f16 (half the memory and half the bytes attention reads; keys and values rounded to float16, as llama.cpp's default)",
            DefaultValueFactory = _ => "f32",
        };

    /// <summary>The --kv-cache value, or a one-line refusal naming it.</summary>
    public static KvCacheType ParseKvCache(string value) => value.ToLowerInvariant() switch
    {
        "f32" => KvCacheType.F32,
        "f16" => KvCacheType.F16,
        _ => throw new PargsException($"--kv-cache {value}: expected f32 or f16"),
    };

    /// <summary>
    /// Makes every KV cache decoding opens for <paramref name="lm"/> and <paramref name="rm"/> store keys and values as
    /// <paramref name="type"/>: the LM's, a causal reward model's, a FaRMA / GenARM reward model's LM. An encoder
    /// classifier keeps no cache (it reads each text whole), so there is nothing to set.
    /// </summary>
    public static void ApplyKvCache(KvCacheType type, CausalLM? lm, Pargs.Rewards.IRewardModel? rm)
    {
        if (lm is not null) lm.Backbone.KvCacheType = type;
        if (rm is Pargs.Rewards.RewardModel causal) causal.Backbone.KvCacheType = type;
        else if (rm is Pargs.Rewards.VocabularyRewardModel vocabulary) vocabulary.Model.Backbone.KvCacheType = type;
    }

    public static void SetThreads(int threads)
    {
        int used = ComputeThreads.Set(threads);
        if (used < threads) Console.Error.WriteLine($"note: --threads {threads}: using {used}, the logical CPUs this process may use");
    }
}
