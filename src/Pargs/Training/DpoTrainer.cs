using Pargs.Checkpoints;
using Pargs.Data;
using Pargs.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Pargs.Training;

/// <summary>
/// Fine-tunes a causal LM on preference pairs with Direct Preference Optimization (<see cref="DpoLoss"/>), the
/// offline baseline of the PARGS paper. The reference model is the policy as it is when the trainer is built
/// (or an explicit <c>reference</c>): its response log-probabilities never change, so they are computed ONCE here
/// and cached — no second model is kept in memory during training. On resume, build the trainer from the BASE
/// model again: the loop restores the policy's trained weights from the checkpoint afterwards.
/// Responses are the pair's real tokens (<see cref="TokenizedPair.ChosenLength"/>; the partial-RM EOS padding is
/// dropped), plus one EOS when <see cref="DpoTrainingOptions.AppendEos"/>. The optimisation is the shared
/// <see cref="TrainingLoop"/>.
/// </summary>
public sealed class DpoTrainer : ITrainingTask
{
    /// <summary>One pair as DPO sees it, with the reference's cached log-probability sums.</summary>
    sealed record Example(int[] Prompt, int[] Chosen, int[] Rejected, double ReferenceChosen, double ReferenceRejected);

    readonly CausalLM policy;
    readonly DpoTrainingOptions options;
    readonly Example[] train;
    readonly Example[]? evaluation;
    readonly LoraAdapters? lora;

    public DpoTrainer(CausalLM policy, IReadOnlyList<TokenizedPair> train, IReadOnlyList<TokenizedPair>? evaluation,
        DpoTrainingOptions options, CausalLM? reference = null)
    {
        options.Validate();
        this.policy = policy;
        this.options = options;
        var config = policy.Config;
        if (policy.Tokenizer is { } tokenizer && tokenizer.VocabSize > config.VocabSize)
            throw new PargsException($"{policy.Source}: the tokenizer has {tokenizer.VocabSize} tokens but the model's vocab_size is {config.VocabSize}; are they from the same checkpoint?");
        if (reference != null && reference.Config.VocabSize != config.VocabSize)
            throw new PargsException($"{reference.Source}: the reference model's vocab_size is {reference.Config.VocabSize}, the policy's is {config.VocabSize}; DPO needs the same vocabulary");
        int? eos = options.AppendEos
            ? config.EosTokenId ?? throw new PargsException($"{policy.Source}: the model config has no eos_token_id to append to responses (turn off appending EOS)")
            : null;
        if (train.Count == 0) throw new PargsException("DPO: there are no training pairs");
        this.train = Prepare("training", train, eos, reference ?? policy);
        this.evaluation = evaluation is { Count: > 0 } ? Prepare("evaluation", evaluation, eos, reference ?? policy) : null;
        // Adapters are attached after the reference log-probs (at init they change nothing anyway: B = 0).
        lora = options.Lora is { } loraOptions ? new LoraAdapters(policy, loraOptions) : null;
        ExampleLengths = this.train.Select(e => e.Prompt.Length + Math.Max(e.Chosen.Length, e.Rejected.Length)).ToArray();
    }

    /// <summary>What the optimizer trains: the policy, or only its LoRA adapters.</summary>
    public nn.Module Model => lora ?? (nn.Module)policy;
    public LoraAdapters? Lora => lora;
    public IReadOnlyList<int> ExampleLengths { get; }
    public CausalLM Policy => policy;

    /// <summary>Trains with <see cref="DpoTrainingOptions.Loop"/>; the policy is left in eval mode (adapters merged).</summary>
    public TrainingResult Train(IProgress<TrainingProgress>? progress = null, CancellationToken cancellation = default)
    {
        var result = new TrainingLoop(this, options.Loop).Run(progress, cancellation);
        lora?.Sync();
        policy.eval();
        return result;
    }

    /// <summary>The response DPO scores: the real tokens of the padded side, plus EOS when asked.</summary>
    public static int[] Response(int[] padded, int length, int? eos) => eos is { } e ? [.. padded[..length], e] : padded[..length];

    Example[] Prepare(string set, IReadOnlyList<TokenizedPair> pairs, int? eos, CausalLM reference)
    {
        int vocab = policy.Config.VocabSize;
        int maxLength = Math.Min(options.MaxLength ?? int.MaxValue, policy.Config.MaxPositions);
        var prepared = new (int[] Prompt, int[] Chosen, int[] Rejected)[pairs.Count];
        for (int n = 0; n < pairs.Count; n++)
        {
            var pair = pairs[n];
            string where = pair.SourceLine > 0 ? $"{set} line {pair.SourceLine}" : $"{set} pair {n}";
            if (pair.PromptIds.Length == 0)
                throw new PargsException($"{where}: the prompt has no tokens; the first response token needs context (add BOS)");
            if (pair.ChosenLength <= 0 || pair.RejectedLength <= 0)
                throw new PargsException($"{where}: empty response (chosen has {pair.ChosenLength} tokens, rejected {pair.RejectedLength}); DPO needs at least one response token on each side");
            if (pair.ChosenLength > pair.ChosenIds.Length || pair.RejectedLength > pair.RejectedIds.Length)
                throw new PargsException($"{where}: response lengths {pair.ChosenLength}/{pair.RejectedLength} exceed the stored ids ({pair.ChosenIds.Length}/{pair.RejectedIds.Length})");
            var chosen = Response(pair.ChosenIds, pair.ChosenLength, eos);
            var rejected = Response(pair.RejectedIds, pair.RejectedLength, eos);
            foreach (var (field, ids) in new[] { ("prompt", pair.PromptIds), ("chosen", chosen), ("rejected", rejected) })
                foreach (int id in ids)
                    if (id < 0 || id >= vocab)
                        throw new PargsException($"{where}: field '{field}' has token id {id}, outside the model's vocabulary of size {vocab} (are the tokenizer and the model from the same checkpoint?)");
            int length = pair.PromptIds.Length + Math.Max(chosen.Length, rejected.Length);
            if (length > maxLength)
                throw new PargsException($"{where}: prompt + response is {length} tokens, more than the maximum {maxLength}; lower the data's max length");
            prepared[n] = (pair.PromptIds, chosen, rejected);
        }

        // The reference log-probabilities, once, in eval mode without gradients.
        var referenceChosen = new double[pairs.Count];
        var referenceRejected = new double[pairs.Count];
        bool wasTraining = reference.training;
        reference.eval();
        using (no_grad())
            for (int start = 0; start < prepared.Length; start += options.EvalBatchSize)
            {
                using var scope = NewDisposeScope();
                var chunk = prepared.Skip(start).Take(options.EvalBatchSize).ToArray();
                var (c, r) = SideSums(reference, chunk.Select(e => e.Prompt).ToArray(), chunk.Select(e => e.Chosen).ToArray(), chunk.Select(e => e.Rejected).ToArray());
                c.to(ScalarType.Float64).data<double>().CopyTo(referenceChosen, start);
                r.to(ScalarType.Float64).data<double>().CopyTo(referenceRejected, start);
            }
        if (wasTraining) reference.train();
        return prepared.Select((e, i) => new Example(e.Prompt, e.Chosen, e.Rejected, referenceChosen[i], referenceRejected[i])).ToArray();
    }

    /// <summary>Chosen and rejected sums of the same pairs, from one forward over both sides.</summary>
    static (Tensor Chosen, Tensor Rejected) SideSums(CausalLM model, int[][] prompts, int[][] chosen, int[][] rejected)
    {
        int n = prompts.Length;
        var sums = DpoLogProbs.Sums(model, [.. prompts, .. prompts], [.. chosen, .. rejected]);
        return (sums[..n], sums[n..]);
    }

    /// <summary>The DPO loss of some examples under the current policy.</summary>
    DpoLossResult Loss(IReadOnlyList<Example> examples)
    {
        var (chosen, rejected) = SideSums(policy, examples.Select(e => e.Prompt).ToArray(),
            examples.Select(e => e.Chosen).ToArray(), examples.Select(e => e.Rejected).ToArray());
        var referenceChosen = tensor(examples.Select(e => e.ReferenceChosen).ToArray()).to(chosen.dtype);
        var referenceRejected = tensor(examples.Select(e => e.ReferenceRejected).ToArray()).to(chosen.dtype);
        return DpoLoss.Compute(chosen, rejected, referenceChosen, referenceRejected, options.Beta);
    }

    public TrainingStep Forward(IReadOnlyList<int> examples)
    {
        using var scope = NewDisposeScope(); // the step's loss leaves with its graph (Models/TransformerBackbone.ForwardInScope says why)
        lora?.Sync();
        var result = Loss(examples.Select(i => train[i]).ToList());
        return new TrainingStep(scope.MoveToOuter(lora is null ? result.Loss : lora.Surrogate(result.Loss)), result.Metrics);
    }

    /// <summary>Eval-set means of the loss and every metric (per-batch means weighted by batch size).</summary>
    public IReadOnlyDictionary<string, double>? Evaluate()
    {
        if (evaluation is null) return null;
        using var scope = NewDisposeScope(); // each batch's loss is read and dropped (Models/TransformerBackbone.ForwardInScope says why)
        lora?.Sync();
        var sums = new Dictionary<string, double>();
        foreach (var chunk in evaluation.Chunk(options.EvalBatchSize))
        {
            var result = Loss(chunk);
            var metrics = new Dictionary<string, double>(result.Metrics) { ["loss"] = result.Loss.to(ScalarType.Float64).item<double>() };
            foreach (var (name, value) in metrics) sums[name] = sums.GetValueOrDefault(name) + value * chunk.Length;
        }
        return sums.ToDictionary(kv => kv.Key, kv => kv.Value / evaluation.Length);
    }

    /// <summary>
    /// The policy as a Hugging Face causal-LM folder that <see cref="CausalLM.Load"/> reads back (with LoRA, the
    /// adapters merged in: W₀ + (alpha/rank)·B·A).
    /// </summary>
    public void SavePolicy(string dir)
    {
        lora?.Sync();
        StateDict.Use(policy.StateDictForSaving(), weights => HuggingFaceFolder.Save(dir, policy.Config, policy.Architecture, weights, policy.Tokenizer, generation: policy.Generation));
    }

    const string AdapterFile = "adapter_model.safetensors";

    /// <summary>Checkpoint weights: the (merged) policy as an HF folder, so any checkpoint is a usable model; plus the adapters.</summary>
    public void SaveModel(string dir)
    {
        SavePolicy(dir);
        if (lora != null)
            TorchSharp.PyBridge.Safetensors.SaveStateDict(Path.Combine(dir, AdapterFile), StateDict.Snapshot(lora));
    }

    public void LoadModel(string dir)
    {
        if (lora != null)
        {
            // The base weights never change under LoRA: restore the adapters and re-merge.
            string adapterPath = Path.Combine(dir, AdapterFile);
            if (!File.Exists(adapterPath)) throw new PargsException($"{adapterPath}: missing (the checkpoint was not written by a LoRA run)");
            StateDict.Load(lora, TorchSharp.PyBridge.Safetensors.LoadStateDict(adapterPath), adapterPath);
            lora.Sync();
            return;
        }
        if (!File.Exists(Path.Combine(dir, HuggingFaceFolder.WeightsFile)))
            throw new PargsException($"{Path.Combine(dir, HuggingFaceFolder.WeightsFile)}: missing (the checkpoint is incomplete)");
        using var contents = HuggingFaceFolder.Load(dir);
        bool tied = policy.Config.TieWordEmbeddings;
        StateDict.Load(policy, contents.Tensors, dir, mayBeUnused: name => tied && name == "lm_head.weight");
    }
}
