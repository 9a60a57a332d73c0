using Pargs.Checkpoints;
using Pargs.Models.Cpu;
using Pargs.Models.Families.Llama;
using Pargs.Tokenizers;
using Pargs.Weights;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Pargs.Models;

/// <summary>
/// A causal language model: a transformer backbone and an output head <c>lm_head</c> (tied to the token
/// embedding when the config says so). Parameter names match Hugging Face's ...ForCausalLM one to one.
/// </summary>
public sealed class CausalLM : nn.Module
{
    readonly Linear? lmHead;
    readonly Families.IModelFamily family;
    // Inference in stored precision (LoadForInference): the head as stored (or the tied embedding), no torch weights.
    readonly WeightMatrix? storedHead;

    public CausalLM(ModelConfig config) : base(nameof(CausalLM))
    {
        Config = config;
        family = config.Family;
        Backbone = TransformerBackbone.BuildInto(this, config);
        if (!config.TieWordEmbeddings)
        {
            lmHead = nn.Linear(config.HiddenSize, config.VocabSize, hasBias: false);
            register_module("lm_head", lmHead);
        }
    }

    /// <summary>
    /// The decode-only construction: <paramref name="backbone"/> holds the weights in their stored precision and
    /// <paramref name="head"/> is lm_head as stored (the embedding when tied). No float32 parameter exists.
    /// </summary>
    CausalLM(ModelConfig config, LlamaStoredBackbone backbone, WeightMatrix head) : base(nameof(CausalLM))
    {
        Config = config;
        family = config.Family;
        Backbone = backbone;
        register_module(config.Family.HuggingFacePrefix, backbone);
        storedHead = head;
    }

    public ModelConfig Config { get; }
    public TransformerBackbone Backbone { get; }
    /// <summary>The weights in their stored precision when loaded for inference (<see cref="LoadForInference"/>); null for a float32 model.</summary>
    public StoredTensors? StoredWeights => (Backbone as LlamaStoredBackbone)?.Weights;
    public ITokenizer? Tokenizer { get; set; }
    public GenerationDefaults? Generation { get; set; }
    /// <summary>Where the weights came from, for messages and generation records.</summary>
    public string Source { get; set; } = "(in memory)";

    /// <summary>What decoding needs to know about the model (tokenizer, vocabulary, context, EOS).</summary>
    public Engine.LanguageModelInfo Info => new(Source, Tokenizer, Config.VocabSize, Config.MaxPositions, Config.EosTokenId)
    {
        MoreStopIds = Config.EosTokenIds.Concat(Generation?.EosTokenIds ?? []).Distinct().ToArray(),
    };

    /// <summary>The Hugging Face architecture name written into config.json.</summary>
    public string Architecture => Config.Family.CausalLMArchitecture(Config);

    /// <summary>
    /// Next-token logits from hidden states [..., hidden] → [..., vocab]. A decoding step's few rows go through
    /// <see cref="CpuLinear"/> (the head is the largest weight of a small model, streamed once per step). A model held for
    /// inference only (a server's: <see cref="KeptPanels"/>) can keep its head's CpuGemm panels too, within
    /// <see cref="KeptPanels.MaxHeadBytes"/> (PARGS_KEPT_HEAD_MIB, off by default): a 16-stream step's rows then read them
    /// as its layers read theirs.
    /// </summary>
    public Tensor LogitsFromHidden(Tensor hidden)
    {
        using var scope = NewDisposeScope(); // holds the head's temporaries (a softcap's tanh chain): see TransformerBackbone.ForwardInScope
        if (storedHead is not null) return scope.MoveToOuter(StoredLogits(hidden));
        var weight = lmHead?.weight ?? Backbone.TokenEmbeddingWeight;
        var kept = KeptPanels.Of(Backbone);
        var keptHead = kept is not null && kept.KeepsHead(Config.VocabSize, Config.HiddenSize) ? kept : null;
        return scope.MoveToOuter(family.AdjustLogits(CpuLinear.TryForward(hidden, weight, keptHead: keptHead) ?? nn.functional.linear(hidden, weight), Config));
    }

    unsafe Tensor StoredLogits(Tensor hidden)
    {
        using var x = hidden.to(ScalarType.Float32).contiguous();
        var shape = x.shape;
        shape[^1] = storedHead!.Rows;
        long rows = x.numel() / Config.HiddenSize;
        var y = empty(shape, dtype: ScalarType.Float32);
        storedHead.MatMul(TensorMemory.Floats(x), checked((int)rows), TensorMemory.Floats(y));
        return y;
    }

    /// <summary>
    /// Logits for every position of a padded batch [B, T] (no cache): what perplexity, DPO and the
    /// naive decoding oracle need. <paramref name="valid"/> [B, T] marks real tokens (null = all real).
    /// </summary>
    public Tensor Logits(Tensor inputIds, Tensor? valid = null)
    {
        using var scope = NewDisposeScope(); // the mask, positions and hidden states are this call's: see TransformerBackbone.ForwardInScope
        valid ??= ones_like(inputIds, dtype: ScalarType.Bool);
        var hidden = Backbone.ForwardPadded(inputIds, valid);
        return scope.MoveToOuter(LogitsFromHidden(hidden));
    }

    /// <summary>
    /// Loads a causal LM and its tokenizer from a Hugging Face folder, a .gguf file or a llama2.c .bin
    /// (<paramref name="tokenizerPath"/> overrides the tokenizer found beside or inside the checkpoint).
    /// </summary>
    public static CausalLM Load(string path, string? tokenizerPath = null)
    {
        using var contents = CheckpointLoader.Load(path);
        var model = FromCheckpoint(contents);
        model.Tokenizer = TokenizerLoader.ForCheckpoint(contents, tokenizerPath);
        return model;
    }

    /// <summary>
    /// Loads a causal LM for inference (generate, serve, bench): a GGUF or safetensors checkpoint of a family with a
    /// stored-precision kernel (llama, mistral, qwen2, qwen3) is memory-mapped and computed on as stored
    /// (<see cref="StoredCheckpoint"/>); anything else loads as <see cref="Load"/> does (float32). Not for training.
    /// </summary>
    public static CausalLM LoadForInference(string path, string? tokenizerPath = null)
    {
        if (StoredCheckpoint.Open(path) is not { } opened) return Load(path, tokenizerPath);
        var (contents, weights) = opened;
        try
        {
            var model = FromStored(contents.Config, weights, contents.Source);
            model.Generation = contents.Generation;
            model.Tokenizer = TokenizerLoader.ForCheckpoint(contents, tokenizerPath);
            ReleaseLoadingGarbage();
            return model;
        }
        catch
        {
            weights.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Returns the memory loading used and dropped (GGUF metadata read twice, the vocabulary built through a tokenizer.json
    /// tree: tens of MB for a 150k-token vocabulary) to the system before the first forward pages in the weights. WHY:
    /// max RSS is what a user's machine must hold; left to the GC, that garbage is still resident when the mapped file
    /// becomes resident (measured below in docs/benchmarks.md). A blocking aggressive collection costs milliseconds.
    /// </summary>
    internal static void ReleaseLoadingGarbage() => GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);

    /// <summary>
    /// A decode-only model over <paramref name="weights"/> (Hugging Face names, stored precision; disposed with the
    /// model): a Llama-family config, every tensor the family declares, lm_head unless tied.
    /// </summary>
    public static CausalLM FromStored(ModelConfig config, StoredTensors weights, string source)
    {
        if (!StoredCheckpoint.HasStoredKernel(config))
            throw new PargsException($"{source}: model_type \"{config.ModelType}\" has no stored-precision kernel; load it as float32");
        var head = weights.Matrix(config.TieWordEmbeddings ? config.Family.HuggingFacePrefix + "." + LlamaTensors.Embedding : "lm_head.weight");
        var model = new CausalLM(config, new LlamaStoredBackbone(config, weights), head) { Source = source };
        model.eval();
        return model;
    }

    /// <summary>Builds the model from checkpoint tensors (strict: every parameter must be present).</summary>
    public static CausalLM FromCheckpoint(CheckpointContents contents)
    {
        var model = new CausalLM(contents.Config)
        {
            Tokenizer = contents.Tokenizer,
            Generation = contents.Generation,
            Source = contents.Source,
        };
        bool tied = contents.Config.TieWordEmbeddings;
        // A reward-model or classification checkpoint has "score.weight" instead of "lm_head": it is not an LM.
        if (!contents.Tensors.ContainsKey("lm_head.weight") && contents.Tensors.ContainsKey("score.weight"))
            throw new PargsException($"{contents.Source}: this checkpoint has a score head (a reward model), not an lm_head; load it as a reward model");
        StateDict.Load(model, contents.Tensors, contents.Source,
            mayBeUnused: name => tied && name == "lm_head.weight");
        model.eval();
        return model;
    }

    /// <summary>Parameters by HF name (tied head left out, as Hugging Face saves it).</summary>
    public Dictionary<string, Tensor> StateDictForSaving() => StateDict.Snapshot(this);
}
