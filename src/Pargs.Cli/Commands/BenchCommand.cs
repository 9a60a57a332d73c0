using System.CommandLine;
using Pargs.Benchmarks;
using Spectre.Console;

namespace Pargs.Cli.Commands;

/// <summary>`pargs bench generate|decode`: throughput and guided-decoding cost, as a console table and optional Markdown.</summary>
public static class BenchCommand
{
    public static Command Create()
    {
        var command = new Command("bench", "Measure decoding speed (tokens/s, ms per token) on this machine.");
        command.Subcommands.Add(Generate());
        command.Subcommands.Add(Decode());
        command.Subcommands.Add(TrainRm());
        command.Subcommands.Add(MatVec());
        command.Subcommands.Add(Gemm());
        command.Subcommands.Add(Tokenize());
        command.Subcommands.Add(Serve());
        command.Subcommands.Add(Host());
        command.Subcommands.Add(RemoteBenchCommand.Create(OutOption, Report));
        return command;
    }

    /// <summary>`pargs bench serve`: concurrent streams against an in-process `pargs serve` on loopback (docs/server.md).</summary>
    static Command Serve()
    {
        var defaults = new Pargs.Server.ServeBenchmarkOptions();
        var concurrency = new Option<int[]>("--concurrency") { Description = "Concurrent streams per level (one table row each).", DefaultValueFactory = _ => defaults.Concurrency.ToArray(), AllowMultipleArgumentsPerToken = true };
        var requests = new Option<int>("--requests") { Description = "Requests each stream sends in turn.", DefaultValueFactory = _ => defaults.RequestsPerStream };
        var maxTokens = new Option<int>("--max-tokens") { Description = "Tokens per request.", DefaultValueFactory = _ => defaults.MaxTokens };
        var k = new Option<int>("-k") { Description = "Candidates per step.", DefaultValueFactory = _ => defaults.K };
        var serveModels = new Option<string[]>("--models") { Description = "260k (stories260K + its partial RM) and/or 15m (random stories15M-shaped LM and RM).", DefaultValueFactory = _ => ["260k", "15m"], AllowMultipleArgumentsPerToken = true };
        var serveThreads = ModelOptions.Threads();
        var command = new Command("serve", "PARGS streams at 1, 4, 16, 64 concurrent clients against pargs serve (stories260K + its partial RM, and the 15M shape) on loopback: aggregate tok/s, TTFT, inter-token latency.");
        foreach (var o in new Option[] { concurrency, requests, maxTokens, k, serveModels, serveThreads, OutOption }) command.Options.Add(o);
        command.SetAction(CliErrors.Action(result =>
        {
            ModelOptions.SetThreads(result.GetValue(serveThreads)); // as `pargs serve --threads`
            var options = defaults with { Concurrency = result.GetValue(concurrency)!, RequestsPerStream = result.GetValue(requests), MaxTokens = result.GetValue(maxTokens), K = result.GetValue(k) };
            string? outPath = result.GetValue(OutOption) is { } o ? CliErrors.OutputFile(o) : null;
            var machine = MachineInfo.Current();
            if (result.GetValue(serveModels)!.FirstOrDefault(m => m is not ("260k" or "15m")) is { } unknownModel)
                throw new PargsException($"--models: unknown model \"{unknownModel}\" (expected 260k or 15m)");
            foreach (string shape in result.GetValue(serveModels)!)
            {
                Pargs.Server.ServedModels models;
                string name = "stories260K";
                IReadOnlyList<string> prompts = defaults.Prompts;
                if (shape == "15m") { (models, prompts) = Pargs.Server.ServeBenchmark.Random15M(); name = Pargs.Server.ServeBenchmark.Model15M; }
                else models = new Pargs.Server.ServedModels()
                    .AddRewardModel("stories260K-partial-rm", RewardModelFiles.Load(ShippedData.Find("data/models/stories260K-partial-rm")))
                    .AddLanguageModel("stories260K", ModelOptions.LoadLanguageModel(null, null));
                using var _ = models;
                var limits = new Pargs.Server.ServerLimits { MaxQueuedRequests = options.Concurrency.DefaultIfEmpty(1).Max() + 1 };
                var server = Pargs.Server.PargsServer.StartAsync(models, new Pargs.Server.PargsServerOptions { Port = 0, Limits = limits }).GetAwaiter().GetResult();
                BenchTable table;
                try { table = Pargs.Server.ServeBenchmark.RunAsync(server.Url, name, options with { Prompts = prompts }, Log).GetAwaiter().GetResult(); }
                finally { server.DisposeAsync().AsTask().GetAwaiter().GetResult(); }
                table.Notes.Add(Pargs.Server.ServeBenchmark.KeptPanelsNote(models));
                Report(machine, result.GetValue(serveThreads).ToString(), table, CommandLine(), outPath);
            }
            return 0;
        }));
        return command;
    }

    static readonly Option<string?> OutOption = new("--out") { Description = "Append the results as Markdown to this file (default: print only)." };
    static readonly Option<string> StoriesOption = new("--stories")
    {
        Description = "The stories260K checkpoint.",
        DefaultValueFactory = _ => BenchmarkModels.Stories260KPath,
    };

    static Command Host()
    {
        var gguf = new Option<string>("--gguf") { Description = "A GGUF file the host engine decodes (llama, mistral, qwen2, qwen3).", Required = true };
        var threads = new Option<int>("--threads") { Description = "Threads for the decode kernels.", DefaultValueFactory = _ => 1 };
        var newTokens = new Option<int>("--new-tokens") { Description = "Greedy tokens per run.", DefaultValueFactory = _ => 64 };
        var rounds = new Option<int>("--rounds") { Description = "Alternated (torch, host) rounds.", DefaultValueFactory = _ => 3 };
        var command = new Command("host", "Greedy decode CPU per token of the torch-free host engine against the torch engine on the same GGUF, alternated in one process.");
        foreach (var o in new Option[] { gguf, threads, newTokens, rounds, OutOption }) command.Options.Add(o);
        command.SetAction(CliErrors.Action(result =>
        {
            string? outPath = result.GetValue(OutOption) is { } o ? CliErrors.OutputFile(o) : null;
            var options = new HostEngineBenchmarkOptions { Gguf = result.GetValue(gguf)!, Threads = result.GetValue(threads), NewTokens = result.GetValue(newTokens), Rounds = result.GetValue(rounds) };
            Report(MachineInfo.Current(), options.Threads.ToString(), HostEngineBenchmark.Run(options, Log), CommandLine(), outPath);
            return 0;
        }));
        return command;
    }

    static Command Generate()
    {
        var threads = new Option<int[]>("--threads") { Description = "Thread counts to measure, for torch and Pargs' CPU kernels (one table row each).", DefaultValueFactory = _ => new GenerateBenchmarkOptions().Threads.ToArray(), AllowMultipleArgumentsPerToken = true };
        var batch = new Option<int[]>("--batch") { Description = "Batch sizes.", DefaultValueFactory = _ => new[] { 1, 10 }, AllowMultipleArgumentsPerToken = true };
        var models = new Option<string[]>("--models") { Description = "Models: 260k (stories260K checkpoint), 15m, 110m (random Llamas of those shapes); phi3-260k, phi3-15m, neox-260k, neox-15m, gemma2-260k, gemma2-15m, gemma3-260k, gemma3-15m (random Phi-3s, GPT-NeoXs and Gemmas of those shapes).", DefaultValueFactory = _ => new[] { "260k", "15m", "110m" }, AllowMultipleArgumentsPerToken = true };
        var seconds = new Option<double>("--seconds") { Description = "Decoding time per configuration.", DefaultValueFactory = _ => 3.0 };
        var promptLength = new Option<int>("--prompt-length") { Description = "Prompt tokens per row.", DefaultValueFactory = _ => 16 };
        var gguf = new Option<string?>("--gguf") { Description = "A GGUF file: greedy decode and 512-token prefill of Pargs on it in stored precision (instead of --models)." };
        var yardstick = new Option<bool>("--yardstick") { Description = "With --gguf: run llama.cpp (docs/yardstick) on the same file between two Pargs runs and print the ratios." };
        var kvCache = ModelOptions.KvCache(); // with --gguf: llama.cpp's default cache is f16, so f16 compares like for like
        var ggufShape = new Option<int[]>("--gguf-work") { Description = "With --gguf: new tokens, prefill tokens, repeats.", DefaultValueFactory = _ => [64, 512, 3], AllowMultipleArgumentsPerToken = true };
        var command = new Command("generate", "Greedy decoding tokens/s at batch 1 and 10 (stories260K, 15M- and 110M-shaped Llamas), or on a GGUF against llama.cpp.");
        foreach (var o in new Option[] { threads, batch, models, seconds, promptLength, StoriesOption, OutOption, gguf, yardstick, ggufShape, kvCache }) command.Options.Add(o);
        command.SetAction(CliErrors.Action(result =>
        {
            var cacheType = ModelOptions.ParseKvCache(result.GetValue(kvCache)!);
            if (result.GetValue(gguf) is { } file)
            {
                string? ggufOut = result.GetValue(OutOption) is { } go ? CliErrors.OutputFile(go) : null;
                var ggufThreads = result.GetResult(threads) is null ? [1, 2] : result.GetValue(threads)!;
                var ggufTable = GgufYardstick.Run(new GgufYardstickOptions
                {
                    Gguf = file, Threads = ggufThreads, PromptLength = result.GetValue(promptLength), Yardstick = result.GetValue(yardstick),
                    KvCache = cacheType, NewTokens = Work(0, 64), PrefillTokens = Work(1, 512), Repeats = Work(2, 3),
                }, Log);
                int Work(int i, int byDefault) => result.GetValue(ggufShape) is { } w && w.Length > i ? w[i] : byDefault;
                Report(MachineInfo.Current(), string.Join(",", ggufThreads), ggufTable, CommandLine(), ggufOut);
                return 0;
            }
            if (result.GetValue(yardstick)) throw new PargsException("--yardstick needs --gguf FILE");
            if (cacheType != Pargs.Models.KvCacheType.F32) throw new PargsException("--kv-cache f16 applies to --gguf FILE; the --models benchmark measures float32 caches");
            var options = new GenerateBenchmarkOptions
            {
                Threads = result.GetValue(threads)!, BatchSizes = result.GetValue(batch)!, Models = result.GetValue(models)!,
                SecondsPerConfig = result.GetValue(seconds), PromptLength = result.GetValue(promptLength),
                Stories260KPath = result.GetValue(StoriesOption)!,
            };
            string? outPath = result.GetValue(OutOption) is { } o ? CliErrors.OutputFile(o) : null; // before the work, not after
            var machine = MachineInfo.Current();
            var table = GenerateBenchmark.Run(options, Log);
            Report(machine, string.Join(",", options.Threads), table, CommandLine(), outPath);
            return 0;
        }));
        return command;
    }

    static Command Decode()
    {
        var threads = new Option<int>("--threads") { Description = "Threads for torch and Pargs' CPU kernels.", DefaultValueFactory = _ => 1 };
        var models = new Option<string[]>("--models") { Description = "Models: 260k (stories260K checkpoint), 15m (random Llama of that shape).", DefaultValueFactory = _ => new[] { "260k", "15m" }, AllowMultipleArgumentsPerToken = true };
        var prompts = new Option<int[]>("--prompt-lengths") { Description = "Prompt lengths (random token ids).", DefaultValueFactory = _ => new[] { 64, 256 }, AllowMultipleArgumentsPerToken = true };
        var newTokens = new Option<int>("--new-tokens") { Description = "New tokens for top-k, ARGS, PARGS.", DefaultValueFactory = _ => 64 };
        var naiveTokens = new Option<int>("--naive-new-tokens") { Description = "New tokens for the (slow) naive PARGS reference.", DefaultValueFactory = _ => 4 };
        var k = new Option<int>("-k") { Description = "Candidates per step.", DefaultValueFactory = _ => 10 };
        var methods = new Option<string[]>("--methods") { Description = "Instead: these methods next to top-k (ms/token, LM/RM calls per token), e.g. farma genarm cd cards", AllowMultipleArgumentsPerToken = true };
        var rounds = new Option<int?>("--rounds") { Description = $"Interleaved rounds (each runs every method once; ratios are medians over rounds). Default: {MethodsBenchmark.DefaultRounds} with --methods, 11 without." };
        var command = new Command("decode", "Wall ms per token: top-k vs ARGS vs PARGS vs naive PARGS, with an RM the LM's shape.");
        foreach (var o in new Option[] { threads, models, prompts, newTokens, naiveTokens, k, methods, rounds, StoriesOption, OutOption }) command.Options.Add(o);
        command.SetAction(CliErrors.Action(result =>
        {
            var options = new DecodeBenchmarkOptions
            {
                Threads = result.GetValue(threads), Models = result.GetValue(models)!, PromptLengths = result.GetValue(prompts)!,
                NewTokens = result.GetValue(newTokens), NaiveNewTokens = result.GetValue(naiveTokens), K = result.GetValue(k),
                Stories260KPath = result.GetValue(StoriesOption)!,
            };
            int? roundCount = result.GetValue(rounds);
            if (roundCount is < 1) throw new PargsException($"--rounds must be at least 1, got {roundCount}");
            if (roundCount is { } r) options = options with { Repeats = r };
            string? outPath = result.GetValue(OutOption) is { } o ? CliErrors.OutputFile(o) : null; // before the work, not after
            var machine = MachineInfo.Current();
            var table = result.GetValue(methods) is { Length: > 0 } names ? MethodsBenchmark.Run(options, names, roundCount ?? MethodsBenchmark.DefaultRounds, Log) : DecodeBenchmark.Run(options, Log);
            Report(machine, options.Threads.ToString(), table, CommandLine(), outPath);
            return 0;
        }));
        return command;
    }

    static Command TrainRm()
    {
        var threads = new Option<int>("--threads") { Description = "Threads for torch and Pargs' CPU kernels.", DefaultValueFactory = _ => 1 };
        var lengths = new Option<int[]>("--lengths") { Description = "Response lengths L.", DefaultValueFactory = _ => new[] { 32, 64, 128 }, AllowMultipleArgumentsPerToken = true };
        var command = new Command("train-rm", "Partial RM training pairs/s: one forward per pair vs materialized prefixes.");
        foreach (var o in new Option[] { threads, lengths, StoriesOption, OutOption }) command.Options.Add(o);
        command.SetAction(CliErrors.Action(result =>
        {
            var options = new TrainRmBenchmarkOptions
            {
                Threads = result.GetValue(threads), ResponseLengths = result.GetValue(lengths)!, Stories260KPath = result.GetValue(StoriesOption)!,
            };
            string? outPath = result.GetValue(OutOption) is { } o ? CliErrors.OutputFile(o) : null; // before the work, not after
            var machine = MachineInfo.Current();
            var table = TrainRmBenchmark.Run(options, Log);
            Report(machine, options.Threads.ToString(), table, CommandLine(), outPath);
            Report(machine, options.Threads.ToString(), TrainRmBenchmark.RunEncoder(options, Log), CommandLine(), outPath); // encoder backbones (issue 15)
            return 0;
        }));
        return command;
    }

    static Command MatVec()
    {
        var defaults = new MatVecBenchmarkOptions();
        var threads = new Option<int[]>("--threads") { Description = "Thread counts, side by side.", DefaultValueFactory = _ => defaults.Threads.ToArray(), AllowMultipleArgumentsPerToken = true };
        var shapes = new Option<string[]>("--shapes") { Description = "Layer shapes: 0.5b (hidden 896, ff 4864), 1b (hidden 2048, ff 8192).", DefaultValueFactory = _ => defaults.Shapes.ToArray(), AllowMultipleArgumentsPerToken = true };
        var formats = new Option<string[]>("--formats") { Description = "Weight formats (f32 also runs the existing float32 kernel).", DefaultValueFactory = _ => defaults.Formats.ToArray(), AllowMultipleArgumentsPerToken = true };
        var seconds = new Option<double>("--seconds") { Description = "Measuring time per format and thread count.", DefaultValueFactory = _ => defaults.SecondsPerConfig };
        var workingSet = new Option<int>("--working-set-mib") { Description = "MiB of matrix copies cycled through, to read weights from memory rather than cache.", DefaultValueFactory = _ => defaults.WorkingSetMiB };
        var activationRows = new Option<int>("--activation-rows") { Description = "Activation rows per product (1: decode; 2–15: PARGS's k candidates in the reward model).", DefaultValueFactory = _ => defaults.ActivationRows };
        var command = new Command("matvec", "Matrix × vector ms and GB/s per weight format (f32, f16, bf16, q8_0, q4_0, q4_K, ...) at the 0.5B and 1B layer shapes.");
        foreach (var o in new Option[] { threads, shapes, formats, seconds, workingSet, activationRows, OutOption }) command.Options.Add(o);
        command.SetAction(CliErrors.Action(result =>
        {
            var options = new MatVecBenchmarkOptions
            {
                Threads = result.GetValue(threads)!, Shapes = result.GetValue(shapes)!, Formats = result.GetValue(formats)!,
                SecondsPerConfig = result.GetValue(seconds), WorkingSetMiB = result.GetValue(workingSet),
                ActivationRows = result.GetValue(activationRows),
            };
            string? outPath = result.GetValue(OutOption) is { } o ? CliErrors.OutputFile(o) : null; // before the work, not after
            var machine = MachineInfo.Current();
            var table = MatVecBenchmark.Run(options, Log);
            Report(machine, string.Join(",", options.Threads), table, CommandLine(), outPath);
            return 0;
        }));
        return command;
    }

    static Command Gemm()
    {
        var defaults = new GemmBenchmarkOptions();
        var rows = new Option<int[]>("--rows") { Description = "Activation rows per product.", DefaultValueFactory = _ => defaults.Rows.ToArray(), AllowMultipleArgumentsPerToken = true };
        var shapes = new Option<string[]>("--shapes") { Description = "Matrix shapes out×in.", DefaultValueFactory = _ => defaults.Shapes.ToArray(), AllowMultipleArgumentsPerToken = true };
        var seconds = new Option<double>("--seconds") { Description = "Thread CPU seconds per cell.", DefaultValueFactory = _ => defaults.SecondsPerCell };
        var siblingRows = new Option<int[]>("--sibling-rows") { Description = "Rows of the reward model's sibling-forward table (k = 10 each); 0: skip it.", DefaultValueFactory = _ => defaults.SiblingRows.ToArray(), AllowMultipleArgumentsPerToken = true };
        var crossover = new Option<int[]>("--crossover-rows") { Description = "Rows of the 15M-shape kernel-vs-torch table's sibling forwards (k = 10 each); 0: skip it.", DefaultValueFactory = _ => defaults.CrossoverRows.ToArray(), AllowMultipleArgumentsPerToken = true };
        var crossoverShape = new Option<string>("--crossover-shape") { Description = "The kernel-vs-torch table's model shape: 15m or 42m.", DefaultValueFactory = _ => defaults.CrossoverShape };
        var lmStepThreads = new Option<int[]>("--lm-step-threads") { Description = "Thread counts of the LM step table.", DefaultValueFactory = _ => new[] { 1, 2 }, AllowMultipleArgumentsPerToken = true };
        var lmStepRows = new Option<int[]>("--lm-step-rows") { Description = "Rows of the 15M shape's batched LM step table (layers, head, log-softmax; 1 and 2 threads); 0: skip it.", DefaultValueFactory = _ => new[] { 1, 12, 16 }, AllowMultipleArgumentsPerToken = true };
        var command = new Command("gemm", "Float32 products of many rows (batched steps, sibling candidates): GMAC/s of the dot kernel, CpuGemm and torch, one thread.");
        foreach (var o in new Option[] { rows, shapes, seconds, siblingRows, crossover, crossoverShape, lmStepRows, lmStepThreads, OutOption }) command.Options.Add(o);
        command.SetAction(CliErrors.Action(result =>
        {
            var options = new GemmBenchmarkOptions { Rows = result.GetValue(rows)!, Shapes = result.GetValue(shapes)!, SecondsPerCell = result.GetValue(seconds), SiblingRows = result.GetValue(siblingRows)!, CrossoverRows = result.GetValue(crossover)!, CrossoverShape = result.GetValue(crossoverShape)! };
            string? outPath = result.GetValue(OutOption) is { } o ? CliErrors.OutputFile(o) : null;
            Report(MachineInfo.Current(), "1", GemmBenchmark.Run(options, Log), CommandLine(), outPath);
            if (options.SiblingRows.Any(r => r > 0)) Report(MachineInfo.Current(), "1", GemmBenchmark.RunSiblings(options, Log), CommandLine(), outPath);
            if (options.SiblingRows.Any(r => r > 0)) Report(MachineInfo.Current(), "1 and 2", GemmBenchmark.RunRowSplit(options, Log), CommandLine(), outPath);
            if (options.CrossoverRows.Any(r => r > 0)) Report(MachineInfo.Current(), "1 and 2", GemmBenchmark.RunKernelCrossover(options, Log), CommandLine(), outPath);
            if (result.GetValue(lmStepRows)!.Any(r => r > 0)) Report(MachineInfo.Current(), "1 and 2", LmStepBenchmark.Run(result.GetValue(lmStepRows)!, result.GetValue(lmStepThreads)!, options.SecondsPerCell * 4, LmStepBenchmark.Modes(), Log), CommandLine(), outPath);
            return 0;
        }));
        return command;
    }

    static Command Tokenize()
    {
        var fixtures = new Option<string>("--fixtures") { Description = "Folder of the tokenizer fixtures and corpus.", DefaultValueFactory = _ => TokenizeBenchmark.DefaultFixtures() };
        var names = new Option<string[]>("--tokenizers") { Description = "Tokenizers (folders of --fixtures).", DefaultValueFactory = _ => new TokenizeBenchmarkOptions().Tokenizers.ToArray(), AllowMultipleArgumentsPerToken = true };
        var repeats = new Option<int>("--repeats") { Description = "Encodes per text on each side; the best time counts.", DefaultValueFactory = _ => 3 };
        var noReference = new Option<bool>("--no-reference") { Description = "Measure Pargs alone (no Node)." };
        var command = new Command("tokenize", "Encode tokens/s on the tokenizer corpus: Pargs vs Hugging Face's Rust library (through Node).");
        foreach (var o in new Option[] { fixtures, names, repeats, noReference, OutOption }) command.Options.Add(o);
        command.SetAction(CliErrors.Action(result =>
        {
            var options = new TokenizeBenchmarkOptions
            {
                FixturesDir = result.GetValue(fixtures)!, Tokenizers = result.GetValue(names)!, Repeats = result.GetValue(repeats),
                Reference = !result.GetValue(noReference),
            };
            string? outPath = result.GetValue(OutOption) is { } o ? CliErrors.OutputFile(o) : null; // before the work, not after
            var machine = MachineInfo.Current();
            var table = TokenizeBenchmark.Run(options, Log);
            Report(machine, "1", table, CommandLine(), outPath);
            return 0;
        }));
        return command;
    }

    static string CommandLine() => "pargs " + string.Join(' ', Environment.GetCommandLineArgs().Skip(1));

    static void Log(string line) => AnsiConsole.MarkupLine($"[grey]{Markup.Escape(line)}[/]");

    static void Report(MachineInfo machine, string threads, BenchTable table, string commandLine, string? outPath)
    {
        var md = new System.Text.StringBuilder();
        md.AppendLine($"## `{commandLine.Trim()}` — {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC").AppendLine();
        md.AppendLine("| machine | |").AppendLine("|---|---|");
        foreach (var (name, value) in machine.Rows(threads)) md.AppendLine($"| {name} | {value} |");
        md.AppendLine().Append(table.ToMarkdown());

        // Spectre fits tables to the console's width, and a pipe or file has none (80 columns): headers came out as
        // "prom…". Not on a terminal, the tables are Markdown, whole.
        if (Console.IsOutputRedirected) Console.Write(md.ToString());
        else
        {
            var machineTable = new Table().AddColumn("machine").AddColumn("");
            foreach (var (name, value) in machine.Rows(threads)) machineTable.AddRow(Markup.Escape(name), Markup.Escape(value));
            AnsiConsole.Write(machineTable);

            var results = new Table { Title = new TableTitle(Markup.Escape(table.Title)) };
            foreach (var column in table.Columns) results.AddColumn(Markup.Escape(column));
            foreach (var row in table.Rows) results.AddRow(row.Select(Markup.Escape).ToArray());
            AnsiConsole.Write(results);
            foreach (var note in table.Notes) AnsiConsole.MarkupLine($"[grey]- {Markup.Escape(note)}[/]");
        }

        if (outPath is null) return;
        if (DevicePaths.IsDevice(outPath)) // e.g. /dev/stdout: written in place, nothing to append to
        {
            File.WriteAllText(outPath, md.ToString());
            return;
        }
        // Appending keeps earlier runs; write-then-move so a crash never leaves half a file.
        if (Path.GetDirectoryName(Path.GetFullPath(outPath)) is { } parent) Directory.CreateDirectory(parent);
        string previous = File.Exists(outPath) ? File.ReadAllText(outPath) : "";
        Pargs.IO.AtomicFile.WriteAllText(outPath, previous + md);
        AnsiConsole.MarkupLine($"[green]appended to {Markup.Escape(outPath)}[/]");
    }
}
