using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using Pargs.Checkpoints;
using Pargs.Decoding;
using Pargs.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Pargs.Training;

/// <summary>
/// Proximal Policy Optimization for a causal LM, as TRL's PPOTrainer runs it (trl.experimental.ppo): each update
/// samples responses from the policy for a batch of prompts, scores them (<see cref="IPpoScorer"/>, e.g. the full-sequence
/// reward model), gives every response token the reward −β·KL(policy ‖ reference) and the last one the score as well,
/// estimates advantages by GAE from the value head's values (<see cref="PpoAdvantages"/>), whitens them, and then makes
/// <see cref="PpoTrainingOptions.PpoEpochs"/> passes over the batch in mini-batches with the clipped policy and value
/// losses (<see cref="PpoLoss"/>), one AdamW step per mini-batch. The reference is the frozen base LM.
/// The actor and critic share the LM's backbone (<see cref="PpoPolicyWithValueHead"/>).
///
/// Its data are its own samples, so it does not run through <see cref="TrainingLoop"/> (whose micro-batches are a fixed
/// data set), but it keeps the loop's conventions: AdamW with the same options, the learning-rate schedule (moved once
/// per update, as TRL's scheduler), metrics.jsonl with TRL's names, checkpoint-&lt;update&gt; folders written by
/// <see cref="TrainingCheckpoints"/> (policy as a Hugging Face folder, value head, optimizer state, trainer state).
/// Every random draw — the prompts of an update, each row's sampling stream, the mini-batch order of each PPO epoch — is a
/// function of (seed, update), so a checkpoint's update count is the whole random state: a resumed run continues to the
/// same weights as an uninterrupted one.
/// </summary>
public sealed class PpoTrainer
{
    public const string ValueHeadFile = "value_head.safetensors";
    public const string ConfigFile = "ppo_config.json";

    readonly PpoTrainingOptions options;
    readonly IPpoScorer scorer;
    readonly int[][] prompts;
    readonly CausalLM reference;
    readonly int[] stopIds;
    readonly int? eos;

    /// <param name="policy">The LM to train (changed in place); also the reference when <paramref name="reference"/> is null
    /// (a frozen copy is taken first). On resume, pass the BASE model again: the checkpoint's weights are restored later.</param>
    /// <param name="prompts">Prompt token ids (BOS included when the model wants one).</param>
    public PpoTrainer(CausalLM policy, IPpoScorer scorer, IReadOnlyList<int[]> prompts, PpoTrainingOptions options, CausalLM? reference = null)
    {
        this.options = options.Validate();
        this.scorer = scorer;
        var config = policy.Config;
        if (prompts.Count == 0) throw new PargsException("PPO: there are no training prompts");
        if (reference != null && reference.Config.VocabSize != config.VocabSize)
            throw new PargsException($"{reference.Source}: the reference model's vocab_size is {reference.Config.VocabSize}, the policy's is {config.VocabSize}; PPO's KL needs the same vocabulary");
        for (int i = 0; i < prompts.Count; i++)
        {
            var prompt = prompts[i];
            if (prompt.Length == 0) throw new PargsException($"PPO: prompt {i + 1} has no tokens; the first response token needs context (add BOS)");
            if (prompt.Any(id => id < 0 || id >= config.VocabSize))
                throw new PargsException($"PPO: prompt {i + 1} has a token id outside the model's vocabulary of size {config.VocabSize} (are the tokenizer and the model from the same checkpoint?)");
            if (prompt.Length + options.ResponseLength > config.MaxPositions)
                throw new PargsException($"PPO: prompt {i + 1} has {prompt.Length} tokens; with responses of up to {options.ResponseLength} tokens that is more than the model's {config.MaxPositions} positions (shorten the prompt or the response length)");
        }
        this.prompts = prompts.ToArray();
        eos = config.EosTokenId;
        if (options.StopAtEos && eos is null)
            throw new PargsException($"{policy.Source}: the model config has no eos_token_id to stop responses at (turn off stopping at EOS)");
        stopIds = options.StopAtEos ? policy.Info.MoreStopIds.Append(eos!.Value).Distinct().ToArray() : [];
        this.reference = reference ?? FrozenCopy(policy);
        foreach (var p in this.reference.parameters()) p.requires_grad = false;
        this.reference.eval();
        Model = new PpoPolicyWithValueHead(policy, options.ValueHeadSeed);
    }

    /// <summary>The policy and its value head: what the optimizer trains.</summary>
    public PpoPolicyWithValueHead Model { get; }
    public CausalLM Policy => Model.Policy;
    public PpoTrainingOptions Options => options;

    /// <summary>Updates (rollout batches) this run makes: max steps, or enough batches for the epochs over the prompts.</summary>
    public int TotalUpdates
    {
        get
        {
            if (options.Loop.MaxSteps is { } steps) return steps;
            double updates = Math.Ceiling((double)options.Loop.Epochs * prompts.Length / options.RolloutBatch);
            if (updates > int.MaxValue) throw new PargsException($"{options.Loop.Epochs} epochs of {prompts.Length} prompts are {updates} updates, more than Pargs counts; set fewer epochs or max steps");
            return (int)updates;
        }
    }

    static CausalLM FrozenCopy(CausalLM policy)
    {
        var copy = new CausalLM(policy.Config) { Source = policy.Source, Tokenizer = policy.Tokenizer };
        copy.to(policy.Backbone.TokenEmbeddingWeight.dtype);
        StateDict.Use(policy.StateDictForSaving(), weights => StateDict.Load(copy, weights, policy.Source, mayBeUnused: name => policy.Config.TieWordEmbeddings && name == "lm_head.weight"));
        return copy;
    }

    /// <summary>The prompts of update <paramref name="update"/>: a flat stream over epochs, each epoch a permutation seeded by (seed, epoch).</summary>
    public int[] PromptIndices(int update)
    {
        int batch = options.RolloutBatch, n = prompts.Length;
        var indices = new int[batch];
        int[]? order = null;
        long orderEpoch = -1;
        for (int j = 0; j < batch; j++)
        {
            long item = (long)update * batch + j;
            long epoch = item / n;
            if (epoch != orderEpoch)
            {
                order = Enumerable.Range(0, n).ToArray();
                new Random(unchecked(options.Loop.Seed * 1_000_003 + (int)epoch)).Shuffle(order);
                orderEpoch = epoch;
            }
            indices[j] = order![item % n];
        }
        return indices;
    }

    /// <summary>
    /// Samples, scores and evaluates one rollout batch (no gradients): log-probabilities of the policy and the reference,
    /// values, per-token rewards, advantages and returns. Row j samples from RowRandom(seed, update, j).
    /// </summary>
    public PpoRollout Rollout(int update)
    {
        var rows = PromptIndices(update);
        var batchPrompts = rows.Select(i => prompts[i]).ToArray();
        var random = Enumerable.Range(0, rows.Length).Select(j => DecodingSteps.RowRandom(options.Loop.Seed, update, j)).ToArray();
        using var _ = no_grad();
        using var scope = NewDisposeScope(); // the rollout's tensors leave it; the chunks' forwards stay (Models/TransformerBackbone.ForwardInScope says why)
        var responses = PpoSampler.Sample(Policy, batchPrompts, options.ResponseLength, options.Temperature, stopIds, random);
        var scores = scorer.Score(batchPrompts, responses);
        if (scores.Length != responses.Length || scores.Any(s => !double.IsFinite(s)))
            throw new PargsException($"PPO update {update + 1}: the scorer gave {(scores.Length != responses.Length ? $"{scores.Length} scores for {responses.Length} responses" : "a score that is not a finite number")}");
        if (options.MissingEosPenalty is { } penalty)
            for (int b = 0; b < scores.Length; b++)
                if (!stopIds.Contains(responses[b][^1])) scores[b] -= penalty;

        var sequences = new PpoSequences(batchPrompts, responses);
        // Log-probabilities and values in micro-batches, through torch's ops as the training forward computes them (not the
        // CPU decode kernel's products), so π_old differs from the first pass's π only by the batch's padding.
        var logProbs = new List<Tensor>();
        var referenceLogProbs = new List<Tensor>();
        var values = new List<Tensor>();
        using (Models.Cpu.CpuKernels.Suppress())
            foreach (var chunk in Enumerable.Range(0, rows.Length).Chunk(options.Loop.BatchSize))
            {
                var part = new PpoSequences(chunk.Select(b => batchPrompts[b]).ToArray(), chunk.Select(b => responses[b]).ToArray());
                var (logits, allValues) = Model.Forward(part.Ids, part.Valid);
                var responseLogits = part.ResponseLogits(logits);
                logProbs.Add(Widen(part.LogProbs(responseLogits, options.Temperature), sequences.Mask.shape[1]));
                values.Add(Widen(part.ResponseValues(allValues), sequences.Mask.shape[1]));
                var referenceLogits = part.ResponseLogits(reference.Logits(part.Ids, part.Valid));
                referenceLogProbs.Add(Widen(part.LogProbs(referenceLogits, options.Temperature), sequences.Mask.shape[1]));
            }
        var mask = sequences.Mask.to(logProbs[0].dtype);
        var logp = cat(logProbs, 0) * mask;
        var refLogp = cat(referenceLogProbs, 0) * mask;
        var value = cat(values, 0) * mask;
        var scoreTensor = tensor(scores).to(logp.dtype);
        var kl = PpoAdvantages.Kl(logp, refLogp, mask, options.KlEstimator);
        var nonScore = kl.Times(-options.KlCoef);
        var lengths = responses.Select(r => r.Length).ToArray();
        var rewards = PpoAdvantages.Rewards(kl, scoreTensor, lengths, options.KlCoef);
        if (options.WhitenRewards) rewards = PpoAdvantages.Whiten(rewards, mask, shiftMean: false);
        var (advantages, returns) = PpoAdvantages.Gae(rewards, value, mask, options.Gamma, options.Lambda);
        advantages = PpoAdvantages.Whiten(advantages, mask);
        scope.MoveToOuter([sequences.Ids, sequences.Valid, sequences.Positions, sequences.Targets, sequences.Mask,
            logp, refLogp, value, scoreTensor, kl, nonScore, rewards, advantages, returns]);
        return new PpoRollout(batchPrompts, responses, sequences, logp, refLogp, value, scoreTensor, kl, nonScore, rewards, advantages, returns);
    }

    /// <summary>Pads [b, r] with zeros to [b, width] (chunks of a batch have their own longest response).</summary>
    static Tensor Widen(Tensor t, long width)
        => t.shape[1] == width ? t : nn.functional.pad(t, [0, width - t.shape[1]]);

    /// <summary>The PPO loss of some rows of a rollout under the current policy and value head (with its graph).</summary>
    public PpoLossResult Loss(PpoRollout rollout, IReadOnlyList<int> rows)
    {
        using var scope = NewDisposeScope(); // the losses leave with their graphs (Models/TransformerBackbone.ForwardInScope says why)
        var part = new PpoSequences(rows.Select(b => rollout.Prompts[b]).ToArray(), rows.Select(b => rollout.Responses[b]).ToArray());
        long width = part.Mask.shape[1];
        var index = tensor(rows.Select(b => (long)b).ToArray());
        Tensor Rows(Tensor t) => t.index_select(0, index)[.., ..(int)width];
        var (logits, allValues) = Model.Forward(part.Ids, part.Valid);
        var responseLogits = part.ResponseLogits(logits);
        var logProbs = part.LogProbs(responseLogits, options.Temperature);
        var values = part.ResponseValues(allValues);
        var result = PpoLoss.Compute(logProbs, Rows(rollout.LogProbs), Rows(rollout.Advantages), values, Rows(rollout.Values), Rows(rollout.Returns),
            part.Mask, options.ClipRange, options.ClipRangeValue, options.ValueCoef);
        using (no_grad())
            result.Metrics["policy/entropy_avg"] = PpoAdvantages.MaskedMean(PpoSequences.Entropy(responseLogits.detach(), options.Temperature), part.Mask)
                .to(ScalarType.Float64).item<double>();
        scope.MoveToOuter(result.Loss, result.PolicyLoss, result.ValueLoss);
        return result;
    }

    /// <summary>Runs every update (continuing from the latest checkpoint with <see cref="TrainingOptions.Resume"/>); the policy is left in eval mode.</summary>
    public TrainingResult Train(IProgress<TrainingProgress>? progress = null, CancellationToken cancellation = default)
    {
        var loop = options.Loop;
        if (loop.Threads is { } threads) Models.Cpu.ComputeThreads.Set(threads);
        int totalUpdates = TotalUpdates;
        using var outputLock = loop.OutputDir is { } lockDir ? TrainingOutputLock.Acquire(lockDir) : null;
        string? metricsPath = loop.OutputDir is { } metricsDir ? Path.Combine(metricsDir, TrainingLoop.MetricsFile) : null;
        try
        {
            return Run(totalUpdates, progress, cancellation);
        }
        catch when (metricsPath != null && File.Exists(metricsPath) && new FileInfo(metricsPath).Length == 0)
        {
            File.Delete(metricsPath);
            throw;
        }
        finally
        {
            Model.eval();
        }
    }

    TrainingResult Run(int totalUpdates, IProgress<TrainingProgress>? progress, CancellationToken cancellation)
    {
        var loop = options.Loop;
        // Every tensor of the run is in a DisposeScope, as TrainingLoop's are (and for its reason): the run's, an update's, a micro-batch's.
        using var runScope = NewDisposeScope();
        var parameters = Model.parameters().Where(p => p.requires_grad).ToList();
        var optimizer = new Optimizers.AdamW(parameters, loop.LearningRate, loop.Beta1, loop.Beta2, loop.Epsilon, loop.WeightDecay);
        var history = new List<IReadOnlyDictionary<string, double>>();
        int update = 0;
        string? resumedFrom = null;
        var checkpoints = loop.OutputDir is { } dir ? new TrainingCheckpoints(dir, loop.KeepCheckpoints) : null;
        var files = new CheckpointFiles(this);
        if (checkpoints != null)
        {
            Directory.CreateDirectory(loop.OutputDir!);
            if (loop.Resume && checkpoints.Latest() is { } latest)
            {
                var state = checkpoints.Restore(latest, files, optimizer);
                if (state.Step > totalUpdates)
                    throw new PargsException($"{latest}: the checkpoint is at update {state.Step}, but this run has only {totalUpdates} updates; resume with the run's settings (--max-steps, --epochs) or start a new output folder");
                if (state.Seed != loop.Seed || state.BatchSize != loop.BatchSize || state.GradientAccumulation != loop.GradientAccumulation)
                    throw new PargsException($"{latest}: was written with seed {state.Seed}, batch size {state.BatchSize}, gradient accumulation {state.GradientAccumulation}; resume with the same values");
                update = state.Step;
                history.AddRange(state.LogHistory);
                resumedFrom = latest;
            }
            MetricsJsonl.Rewrite(Path.Combine(loop.OutputDir!, TrainingLoop.MetricsFile), history);
        }

        var window = new MetricWindow();
        var clock = Stopwatch.StartNew();
        int firstUpdate = update;
        int microsPerMini = options.MiniBatchSize / loop.BatchSize;
        Model.train();
        while (update < totalUpdates)
        {
            using var updateScope = NewDisposeScope(); // the checkpoint's state dicts too
            cancellation.ThrowIfCancellationRequested();
            double learningRate = LearningRateSchedule.At(update, totalUpdates, loop.LearningRate, loop.WarmupSteps, loop.Schedule);
            foreach (var group in optimizer.ParamGroups) group.LearningRate = learningRate;
            using (NewDisposeScope())
            {
                var rollout = Rollout(update);
                var sums = new Dictionary<string, double>();
                var ratios = new List<double>();
                double lossSum = 0;
                int micros = 0;
                for (int epoch = 0; epoch < options.PpoEpochs; epoch++)
                {
                    // The mini-batch order of each pass: a fresh permutation (TRL's np.random.permutation), here a function of (seed, update, pass).
                    var order = Enumerable.Range(0, rollout.Count).ToArray();
                    DecodingSteps.RowRandom(loop.Seed, update, rollout.Count + epoch).Shuffle(order);
                    for (int start = 0; start < order.Length; start += options.MiniBatchSize)
                    {
                        optimizer.zero_grad();
                        for (int micro = 0; micro < microsPerMini; micro++)
                        {
                            using var scope = NewDisposeScope();
                            var rows = order.Skip(start + micro * loop.BatchSize).Take(loop.BatchSize).ToArray();
                            var result = Loss(rollout, rows);
                            result.Loss.DividedBy(microsPerMini).backward();
                            double loss = result.Loss.to(ScalarType.Float64).item<double>();
                            if (!double.IsFinite(loss)) throw Diverged(update, $"the loss is {loss}");
                            lossSum += loss;
                            micros++;
                            foreach (var (name, value) in result.Metrics) sums[name] = sums.GetValueOrDefault(name) + value;
                            ratios.Add(result.Metrics["val/ratio"]);
                        }
                        if (loop.MaxGradNorm is { } maxNorm)
                        {
                            double norm = nn.utils.clip_grad_norm_(parameters, maxNorm);
                            if (!double.IsFinite(norm)) throw Diverged(update, $"the gradient norm is {norm}");
                            window.AddGradNorm(norm);
                        }
                        optimizer.step();
                    }
                }
                var metrics = sums.ToDictionary(kv => kv.Key, kv => kv.Value / micros);
                double meanRatio = ratios.Average();
                metrics["val/ratio_var"] = ratios.Count > 1 ? ratios.Sum(r => (r - meanRatio) * (r - meanRatio)) / (ratios.Count - 1) : 0;
                foreach (var (name, value) in RolloutMetrics(rollout)) metrics[name] = value;
                metrics["episode"] = (double)(update + 1) * options.RolloutBatch;
                window.Add(lossSum / micros, metrics);
            }
            update++;
            double epochs = (double)update * options.RolloutBatch / prompts.Length;
            if (update % loop.LogEvery == 0 || update == totalUpdates)
                Log(window.Drain(update, epochs, learningRate), history);
            if (checkpoints != null && loop.CheckpointEvery is { } save && update % save == 0)
                checkpoints.Save(update, files, optimizer, new TrainerState(update, loop.Seed, loop.BatchSize, loop.GradientAccumulation, history));
            var eta = update > firstUpdate ? TimeSpan.FromTicks(clock.Elapsed.Ticks / (update - firstUpdate) * (totalUpdates - update)) : (TimeSpan?)null;
            progress?.Report(new TrainingProgress(update, totalUpdates, window.LastLoss, null, eta));
        }
        return new TrainingResult(update, history, resumedFrom);
    }

    /// <summary>TRL's rollout statistics: sums over a response's tokens, means over the batch.</summary>
    Dictionary<string, double> RolloutMetrics(PpoRollout r)
    {
        double Mean(Tensor t) => t.to(ScalarType.Float64).mean().item<double>();
        double scores = Mean(r.Scores);
        double nonScore = Mean(r.NonScoreRewards.sum(1));
        return new Dictionary<string, double>
        {
            ["objective/kl"] = Mean(r.Kl.sum(1)),
            ["objective/entropy"] = Mean((-r.LogProbs).sum(1)),
            ["objective/non_score_reward"] = nonScore,
            ["objective/rlhf_reward"] = nonScore + scores,
            ["objective/scores"] = scores,
            ["val/num_eos_tokens"] = eos is { } e ? r.Responses.Sum(resp => resp.Count(t => t == e)) : 0,
            ["val/response_length"] = r.Responses.Average(resp => resp.Length),
        };
    }

    PargsException Diverged(int update, string what)
        => new($"PPO diverged at update {update + 1}: {what}; start again with a learning rate below {options.Loop.LearningRate}");

    void Log(Dictionary<string, double> record, List<IReadOnlyDictionary<string, double>> history)
    {
        history.Add(record);
        if (options.Loop.OutputDir is { } dir) MetricsJsonl.Append(Path.Combine(dir, TrainingLoop.MetricsFile), record);
    }

    /// <summary>The policy as a Hugging Face causal-LM folder that <see cref="CausalLM.Load"/> reads back (the value head is not part of it).</summary>
    public void SavePolicy(string dir)
        => StateDict.Use(Policy.StateDictForSaving(), weights => HuggingFaceFolder.Save(dir, Policy.Config, Policy.Architecture, weights, Policy.Tokenizer, generation: Policy.Generation));

    /// <summary>
    /// What a checkpoint must agree on to continue the same run, under TRL's PPOConfig names (seed, batch size and
    /// accumulation are checked from trainer_state.json).
    /// </summary>
    Dictionary<string, double> Settings() => new()
    {
        ["kl_coef"] = options.KlCoef,
        ["kl_estimator"] = options.KlEstimator == PpoKlEstimator.K1 ? 1 : 3,
        ["gamma"] = options.Gamma,
        ["lam"] = options.Lambda,
        ["cliprange"] = options.ClipRange,
        ["cliprange_value"] = options.ClipRangeValue,
        ["vf_coef"] = options.ValueCoef,
        ["num_ppo_epochs"] = options.PpoEpochs,
        ["num_mini_batches"] = options.MiniBatches,
        ["response_length"] = options.ResponseLength,
        ["temperature"] = options.Temperature,
        ["stop_at_eos"] = options.StopAtEos ? 1 : 0,
        ["missing_eos_penalty"] = options.MissingEosPenalty ?? 0,
        ["whiten_rewards"] = options.WhitenRewards ? 1 : 0,
        ["value_head_seed"] = options.ValueHeadSeed,
        ["learning_rate"] = options.Loop.LearningRate,
        ["prompts"] = prompts.Length,
    };

    void SaveModel(string dir)
    {
        SavePolicy(dir);
        TorchSharp.PyBridge.Safetensors.SaveStateDict(Path.Combine(dir, ValueHeadFile), Model.ValueHeadState());
        var json = new JsonObject();
        foreach (var (name, value) in Settings()) json[name] = value;
        Pargs.IO.AtomicFile.WriteAllText(Path.Combine(dir, ConfigFile), json.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }));
    }

    void LoadModel(string dir)
    {
        // The settings first: a checkpoint of another run is refused before any weight is replaced.
        string configPath = Path.Combine(dir, ConfigFile);
        if (!File.Exists(configPath)) throw new PargsException($"{configPath}: missing (the checkpoint was not written by a PPO run, or is incomplete)");
        var saved = Pargs.Json.CheckedJson.ReadFile(configPath, Pargs.Json.CheckedJsonLimits.Config).Object();
        foreach (var (name, expected) in Settings())
        {
            double found = saved[name].Double();
            if (found != expected)
                throw new PargsException($"{configPath}: {name} is {found.ToString(CultureInfo.InvariantCulture)} but this run has {expected.ToString(CultureInfo.InvariantCulture)}; resume with the same settings and prompts");
        }
        string weights = Path.Combine(dir, HuggingFaceFolder.WeightsFile);
        if (!File.Exists(weights)) throw new PargsException($"{weights}: missing (the checkpoint is incomplete)");
        string valueHead = Path.Combine(dir, ValueHeadFile);
        if (!File.Exists(valueHead)) throw new PargsException($"{valueHead}: missing (the checkpoint is incomplete)");
        using (var contents = HuggingFaceFolder.Load(dir))
            StateDict.Load(Policy, contents.Tensors, dir, mayBeUnused: name => Policy.Config.TieWordEmbeddings && name == "lm_head.weight");
        Dictionary<string, Tensor> head;
        try { head = TorchSharp.PyBridge.Safetensors.LoadStateDict(valueHead); }
        catch (Exception e) when (e is not PargsException)
        {
            throw new PargsException($"{valueHead}: cannot be read ({e.GetType().Name}); the checkpoint is damaged — resume from an earlier one or start again", e);
        }
        Model.LoadValueHead(head, valueHead);
    }

    /// <summary>
    /// The checkpoint seam of <see cref="TrainingCheckpoints"/> (written for <see cref="ITrainingTask"/>): PPO uses only its
    /// save and load; its data are rollouts, not the fixed examples the rest of that interface describes.
    /// </summary>
    sealed class CheckpointFiles(PpoTrainer trainer) : ITrainingTask
    {
        public nn.Module Model => trainer.Model;
        public IReadOnlyList<int> ExampleLengths => trainer.prompts.Select(p => p.Length).ToArray();
        public TrainingStep Forward(IReadOnlyList<int> examples) => throw new NotSupportedException("PPO trains on its own rollouts (PpoTrainer.Train)");
        public IReadOnlyDictionary<string, double>? Evaluate() => null;
        public void SaveModel(string dir) => trainer.SaveModel(dir);
        public void LoadModel(string dir) => trainer.LoadModel(dir);
    }
}
