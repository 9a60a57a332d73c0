using System.CommandLine;
using System.Text.Json;
using Pargs.Data;
using Pargs.Decoding;
using Pargs.Decoding.Methods;
using Pargs.Evaluation;
using Pargs.Rewards;
using Spectre.Console;

namespace Pargs.Cli.Commands;

/// <summary>
/// `pargs generate`: continuations from a base LM, optionally steered by a reward model
/// (greedy, topk, topp, best-of-n, args, pargs, pargs-g). One prompt streams to the terminal; a prompts
/// file writes JSONL with a progress bar.
/// </summary>
public static class GenerateCommand
{
    public static Command Create()
    {
        var model = ModelOptions.Model();
        var tokenizer = ModelOptions.Tokenizer();
        var threads = ModelOptions.Threads();
        var rewardModel = new Option<string>("--reward-model", "-r", "--rm") { Description = "Reward model folder (HF ...ForSequenceClassification: a causal RM or a BERT/RoBERTa/DistilBERT/DeBERTa-v2 encoder, for best-of-n, args, pargs, pargs-g, cd, cards; a FaRMA / GenARM causal LM for farma, farma-g, genarm)" };
        var rewardLabel = RewardModelFiles.RewardLabelOption();
        var method = new Option<string>("--method") { Description = DecodingMethods.Names, DefaultValueFactory = _ => "topk" };
        var k = new Option<int>("-k") { Description = "Candidates per step (top-k); also N for best-of-n unless -n is given", DefaultValueFactory = _ => 10 };
        var w = new Option<double>("-w") { Description = "Reward weight w in log p + w·r", DefaultValueFactory = _ => 1.0 };
        var n = new Option<int?>("-n") { Description = "Samples per prompt for best-of-n (default: k)" };
        var temperature = new Option<double>("--temperature") { Description = "Softmax temperature for sampling methods", DefaultValueFactory = _ => 1.0 };
        var topP = new Option<double>("--top-p") { Description = "Probability mass kept by topp", DefaultValueFactory = _ => 0.9 };
        var continuations = new Option<int?>("-K") { Description = "cd: continuations sampled per block (default 10)" };
        var blockLength = new Option<int?>("-M") { Description = "cd: tokens per block (default 8)" };
        var targetReward = new Option<double?>("--target-reward") { Description = "cards: the reward r* its acceptance threshold rises to (required by cards)" };
        var seed = new Option<int>("--seed") { Description = "Random seed (every method is reproducible for a seed)", DefaultValueFactory = _ => 0 };
        var maxNew = new Option<int>("--max-new-tokens") { Description = "Tokens to generate at most", DefaultValueFactory = _ => 64 };
        var stop = new Option<string[]>("--stop") { Description = "Stop string (repeatable)", AllowMultipleArgumentsPerToken = false };
        var prompt = new Option<string>("--prompt", "-p") { Description = "One prompt" };
        var prompts = new Option<string>("--prompts") { Description = "Prompts file: one per line (# starts a comment line) or JSONL with \"prompt\" or \"instruction\"" };
        var output = new Option<string>("--out", "-o") { Description = "Write generations as JSONL here" };
        var shard = new Option<string>("--shard") { Description = "i/n: decode only the i-th of n slices of the prompts (whole batches, from 0), for a job spread over n machines; `pargs merge` joins the n output files into the one an unsharded run writes" };
        var noTimings = new Option<bool>("--no-timings") { Description = "Leave the wall-clock \"seconds\" out of the records, so that two runs of one job (or merged shards and an unsharded run) write the same bytes" };
        var batch = new Option<int>("--batch-size") { Description = "Prompts decoded together", DefaultValueFactory = _ => 8 };
        var decoders = new Option<int>("--decoders") { Description = "Batches decoded at once, each on its own thread, each taking the next batch when it ends: rows in flight = --batch-size × --decoders. With --lm-url, batches that do not wait for each other keep the server busy (--batch-size 1: every row progresses on its own); the output is the same for any count [default: 1; with --lm-url 4]" };
        var template = new Option<string>("--template") { Description = "Prompt template applied to each prompt: plain | hh | chatml | auto (the model's chat template from its tokenizer_config.json, plain if it has none) — use the one the reward model was trained with (train-rm --template)", DefaultValueFactory = _ => "plain" };
        var chat = new Option<bool>("--chat") { Description = "Each prompt is a user message, rendered with the model's own chat template (its tokenizer_config.json) and a generation prompt; a model without one is refused (--template auto would fall back to plain)" };
        var naive = new Option<bool>("--naive") { Description = "Reference algorithm without caches (benchmark baseline / oracle only)" };
        var kvCache = ModelOptions.KvCache();

        var command = new Command("generate", "Generate continuations, optionally steered by a reward model.")
        {
            model, tokenizer, rewardModel, rewardLabel, method, k, w, n, temperature, topP, seed, maxNew, stop, prompt, prompts, template, chat, output, shard, noTimings, batch, decoders, naive, threads,
            continuations, blockLength, targetReward, kvCache,
        };
        var remote = new RemoteOptions(); // --lm-url / --rm-url (docs/remote.md)
        remote.AddTo(command);
        // Compiled without optimization (it runs once): inlined, its callees' type tests (reward models are torch modules)
        // would load torch's types into a decode on the host engine, which needs none.
        command.SetAction(CliErrors.Action([System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoOptimization)] (result) =>
        {
            ModelOptions.SetThreads(result.GetValue(threads));
            T? Given<T>(Option<T> option) where T : struct => result.GetResult(option) is { Implicit: false } ? result.GetValue(option) : null;
            var request = new GenerationRequest
            {
                Method = result.GetValue(method)!,
                Settings = new MethodSettings
                {
                    K = Given(k), W = Given(w), N = result.GetValue(n), Temperature = Given(temperature), TopP = Given(topP),
                    Continuations = result.GetValue(continuations), BlockLength = result.GetValue(blockLength), TargetReward = result.GetValue(targetReward),
                },
                Seed = result.GetValue(seed),
                MaxNewTokens = Given(maxNew),
                StopStrings = result.GetValue(stop) ?? Array.Empty<string>(),
                BatchSize = result.GetValue(batch),
                // With a served LM, batches that take turns with the server leave it idle half the time: 4 in flight by default
                // (the default job at batch 8 ran 1.9× faster on loopback, docs/remote.md); the output is the same for any count.
                Decoders = result.GetResult(decoders) is { Implicit: false } ? result.GetValue(decoders) : remote.RemoteLm(result) ? RemoteOptions.DefaultDecoders : 1,
                Engine = result.GetValue(naive) ? DecodingEngine.Naive : DecodingEngine.Cached,
            };
            var decodingMethod = request.CheckSettings(); // before any model is loaded
            var cacheType = ModelOptions.ParseKvCache(result.GetValue(kvCache)!);
            if (request.StopStrings.Any(string.IsNullOrEmpty)) throw new PargsException("--stop needs a non-empty string");
            if (result.GetValue(output) is { } outFile) CliErrors.OutputFile(outFile);
            var promptShard = result.GetValue(shard) is { } shardText ? PromptShard.Parse(shardText) : (PromptShard?)null;
            if (promptShard is not null && result.GetValue(output) is null) throw new PargsException("--shard writes its slice to a file: give --out");
            var promptTemplate = ChatOrTemplate(result.GetValue(chat), result.GetResult(template) is { Implicit: false }, result.GetValue(template)!, result.GetValue(model));
            // A chat template writes its own BOS: the prompts are tokenized without adding it again (as transformers does).
            request = request with { AddSpecialTokens = !promptTemplate.RendersSpecialTokens };
            var promptList = ReadPrompts(result.GetValue(prompt), result.GetValue(prompts)).Select(promptTemplate.RenderPrompt).ToList();
            string? modelPath = result.GetValue(model);
            if (remote.RemoteLm(result) && (modelPath is not null || request.Engine == DecodingEngine.Naive)) throw new PargsException("--lm-url steers a served model: give it without --model and --naive");
            using var remoteLm = remote.ConnectLm(result, result.GetValue(tokenizer), Math.Max(request.Settings.K ?? MethodSettings.DefaultK, 1));
            // A method that reads only the LM, on a stored-precision model the host engine serves: decoded without torch.
            using var lm = remoteLm is not null ? null
                : request.Engine == DecodingEngine.Cached && !decodingMethod.NeedsRewardModel && ModelOptions.LoadHostLanguageModel(modelPath, result.GetValue(tokenizer)) is { } host
                    ? LocalLm.OnHost(host)
                    : LocalLm.OnTorch(modelPath, result.GetValue(tokenizer), request.Engine);
            Pargs.Engine.LanguageModelEngine engine = remoteLm ?? lm!.Engine;
            // The checkpoint's generation_config.json fills in what the command line left unsaid.
            var options = request.Resolve(lm?.Generation, engine.Info.VocabSize, $"{engine.Info.Source}: generation_config.json"); // before anything is printed
            using var remoteRm = remote.ConnectRm(result, engine.Info);
            if (remoteLm is not null)
            {
                int perBatch = TextGenerator.BatchSizeFor(options), atOnce = TextGenerator.DecodersFor(options, promptList.Count);
                Console.Error.WriteLine($"rows in flight: {atOnce} batch{(atOnce == 1 ? "" : "es")} of up to {perBatch} prompts at once (--decoders {options.Decoders}, --batch-size {perBatch}), at most {remote.Concurrency(result)} requests at once per server (--remote-concurrency), over {remoteLm.Transport}");
            }
            string? rmPath = result.GetValue(rewardModel) ?? (remoteRm is null ? GenerationRequest.DefaultRewardModel(decodingMethod, onShippedModel: modelPath is null && remoteLm is null) : null);
            if (remoteRm is not null && result.GetValue(rewardModel) is not null) throw new PargsException("give --reward-model or --rm-url, not both");
            if (rmPath is null && result.GetValue(rewardLabel) is not null) throw new PargsException("--reward-label needs a reward model (--reward-model)");
            IRewardModel? rm = (IRewardModel?)remoteRm ?? (rmPath is null ? null : RewardModelFiles.LoadForDecoding(rmPath, result.GetValue(rewardLabel), storedPrecision: !result.GetValue(naive)));
            if (lm is not null) lm.SetKvCache(cacheType, rm);
            else ModelOptions.ApplyKvCache(cacheType, null, rm);
            string generator = $"{(lm is null ? "remote" : Path.GetFileName(Path.TrimEndingDirectorySeparator(lm.Source)))}+{decodingMethod.Name}";

            if (result.GetValue(output) is { } outPath)
            {
                // Rows go to a partial file batch by batch; the output appears, whole, when the slice is done, and the same
                // command after a failure resumes after the rows already written (GenerationJob).
                var job = new GenerationJobSettings
                {
                    OutPath = outPath,
                    Generator = generator,
                    Fingerprint = JobFingerprint(promptList, engine.Info.Source),
                    Shard = promptShard ?? PromptShard.Whole,
                    Timings = !result.GetValue(noTimings),
                };
                GenerationJobOutcome outcome = null!;
                AnsiConsole.Progress().Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
                    .Start(ctx =>
                    {
                        var (_, sliceLength) = job.Shard.Slice(promptList.Count, TextGenerator.BatchSizeFor(options));
                        var task = ctx.AddTask($"generate ({decodingMethod.Name})", maxValue: Math.Max(sliceLength, 1));
                        outcome = GenerationJob.Run(engine, rm, promptList, options, job, new Progress<int>(d => task.Value = d));
                    });
                string slice = promptShard is null ? "" : $" (shard {promptShard}: prompts {outcome.Start + 1}–{outcome.Start + outcome.Length} of {promptList.Count})";
                string resumed = outcome.Resumed > 0 ? $", {outcome.Resumed} of them resumed from an interrupted run" : "";
                AnsiConsole.MarkupLine($"wrote {outcome.Records.Count} generations{Markup.Escape(slice + resumed)} to [bold]{Markup.Escape(outPath)}[/]");
            }
            else if (promptList.Count == 1)
            {
                // One prompt: stream the text as it grows. The prompt is echoed with the first token, i.e. only
                // once the generator has accepted it (a prompt beyond the context prints just the error).
                int shown = 0;
                bool echoed = false;
                void Echo()
                {
                    if (!echoed) Console.Write(promptList[0]);
                    echoed = true;
                }
                var results = TextGenerator.Generate(engine, rm, promptList, options, onText: (_, text) =>
                {
                    Echo();
                    if (text.Length > shown && !text.EndsWith('\uFFFD')) { Console.Write(text[shown..]); shown = text.Length; }
                });
                Echo();
                var final = results[0].Output;
                if (final.Length > shown) Console.Write(final[shown..]);
                Console.WriteLine();
                Console.Error.WriteLine($"[{results[0].TokenIds.Length} tokens, {results[0].Seconds:F2} s, {results[0].FinishReason}]");
            }
            else
            {
                var results = AnsiConsole.Progress().Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
                    .Start(ctx =>
                    {
                        var task = ctx.AddTask($"generate ({decodingMethod.Name})", maxValue: promptList.Count);
                        return TextGenerator.Generate(engine, rm, promptList, options, new Progress<int>(d => task.Value = d));
                    });
                bool timings = !result.GetValue(noTimings);
                foreach (var r in results) Console.WriteLine(GenerationJsonl.Format(GenerationJob.Record(r, options, generator, timings)));
            }
            return 0;
        }));
        return command;
    }

    /// <summary>
    /// The local LM as the command uses it: its engine, generation defaults, source and --kv-cache setter. WHY not a
    /// CausalLM local: compiling the action would then load torch's types even when the host engine decodes (no torch).
    /// </summary>
    sealed class LocalLm(Pargs.Engine.LanguageModelEngine engine, Pargs.Checkpoints.GenerationDefaults? generation, string source,
                         IDisposable model, Action<Pargs.Models.KvCacheType, IRewardModel?> setKvCache) : IDisposable
    {
        public Pargs.Engine.LanguageModelEngine Engine => engine;
        public Pargs.Checkpoints.GenerationDefaults? Generation => generation;
        public string Source => source;
        public void SetKvCache(Pargs.Models.KvCacheType type, IRewardModel? rm) => setKvCache(type, rm);
        public void Dispose() => model.Dispose();

        public static LocalLm OnHost(Pargs.Engine.HostLanguageModel host)
            => new(Pargs.Engine.LanguageModelEngine.Host(host), host.Generation, host.Source, host, (type, _) => host.KvCacheType = type);

        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
        public static LocalLm OnTorch(string? path, string? tokenizer, DecodingEngine decoding)
        {
            var lm = ModelOptions.LoadLanguageModel(path, tokenizer, storedPrecision: decoding != DecodingEngine.Naive);
            return new(Engines.For(lm, decoding), lm.Generation, lm.Source, lm, (type, rm) => ModelOptions.ApplyKvCache(type, lm, rm));
        }
    }

    /// <summary>
    /// Which job a partial output file belongs to: the command line as given, the prompts as rendered and the model's
    /// source (with its size and time when it is a file), so a changed setting, prompt file or model starts over.
    /// </summary>
    static string JobFingerprint(IReadOnlyList<string> prompts, string modelSource)
    {
        var parts = new List<string>(Environment.GetCommandLineArgs().Skip(1)) { "\0prompts" };
        parts.AddRange(prompts);
        parts.Add("\0model");
        parts.Add(modelSource);
        if (File.Exists(modelSource))
        {
            var file = new FileInfo(modelSource);
            parts.Add($"{file.Length}:{file.LastWriteTimeUtc.Ticks}");
        }
        return GenerationJob.Fingerprint(parts);
    }

    /// <summary>--prompt, or a file of prompts (<see cref="PromptFile"/>).</summary>
    static List<string> ReadPrompts(string? prompt, string? file)
    {
        if (prompt is not null && file is not null) throw new PargsException("give --prompt or --prompts, not both");
        if (prompt is not null) return new List<string> { prompt };
        if (file is null) return new List<string> { "Once upon a time" };
        return PromptFile.Read(file).ToList();
    }

    /// <summary>The prompt template of --chat (the model's own chat template, required) or --template.</summary>
    static Pargs.Data.PromptTemplate ChatOrTemplate(bool chat, bool templateGiven, string templateName, string? modelPath)
    {
        if (!chat) return Pargs.Data.PromptTemplate.FromName(templateName, "--template", modelPath);
        if (templateGiven) throw new PargsException("--chat uses the model's own chat template; give --chat or --template, not both");
        if (modelPath is null) throw new PargsException("--chat: the shipped default model is a base model without a chat template (give --model with a tokenizer_config.json that has one)");
        var chatTemplate = Pargs.Data.PromptTemplate.FromName(Pargs.Data.PromptTemplate.AutoName, "--chat", modelPath);
        if (chatTemplate.Chat is null)
            throw new PargsException($"--chat: {modelPath} has no chat template (no chat_template in tokenizer_config.json, no chat_template.jinja); use --template plain|hh|chatml for a base model");
        return chatTemplate;
    }
}
