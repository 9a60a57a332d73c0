using System.CommandLine;
using Pargs.Benchmarks;
using Spectre.Console;

namespace Pargs.Cli.Commands;

/// <summary>`pargs bench remote`: PARGS through a remote engine steering pargs serve on loopback, next to the local engine (docs/remote.md).</summary>
public static class RemoteBenchCommand
{
    public static Command Create(Option<string?> outOption, Action<MachineInfo, string, BenchTable, string, string?> report)
    {
        var defaults = new Pargs.Server.RemoteBenchmarkOptions();
        var rows = new Option<int[]>("--rows") { Description = "Rows in flight per level (one batch of that many prompts).", DefaultValueFactory = _ => defaults.Rows.ToArray(), AllowMultipleArgumentsPerToken = true };
        var maxTokens = new Option<int>("--max-tokens") { Description = "Tokens per row.", DefaultValueFactory = _ => defaults.MaxTokens };
        var decoders = new Option<int[]>("--client-decoders") { Description = "Client decoders the rows in flight are split over, a remote level each (1: one batch; 2, 4: half or quarter batches decoded at once, as generate --decoders runs them; 16 at 16 rows: every row on its own).", DefaultValueFactory = _ => defaults.ClientDecoders.ToArray(), AllowMultipleArgumentsPerToken = true };
        var k = new Option<int>("-k") { Description = "Candidates per step.", DefaultValueFactory = _ => defaults.K };
        var shapes = new Option<string[]>("--models") { Description = "260k (stories260K + its partial RM) and/or 15m (random stories15M-shaped LM and RM).", DefaultValueFactory = _ => ["260k"], AllowMultipleArgumentsPerToken = true };
        var serverSide = new Option<string>("--server") { Description = "Where pargs serve runs: in-process (hosted in this process, one runtime for client and server) or process (`pargs serve` started as its own process, as users run it; stories260K only).", DefaultValueFactory = _ => "in-process" };
        var threads = ModelOptions.Threads();
        var command = new Command("remote", "PARGS through a remote engine steering pargs serve (stories260K + its partial RM, or the 15M shape) on loopback at 1, 4, 16 rows in flight, next to the local engine; requests per step counted.");
        foreach (var o in new Option[] { rows, maxTokens, decoders, k, shapes, serverSide, threads, outOption }) command.Options.Add(o);
        command.SetAction(CliErrors.Action(result =>
        {
            var options = defaults with { Rows = result.GetValue(rows)!, MaxTokens = result.GetValue(maxTokens), K = result.GetValue(k), ClientDecoders = result.GetValue(decoders)! };
            if (options.Rows.Count == 0 || options.Rows.Any(r => r < 1 || r > 64)) throw new PargsException("--rows: each level must be between 1 and 64");
            if (options.ClientDecoders.Count == 0 || options.ClientDecoders.Any(d => d < 1 || d > 16)) throw new PargsException("--client-decoders: each must be between 1 and 16");
            Pargs.Server.RemoteBenchmark.CheckDecoders(options.Rows, options.ClientDecoders);
            string? outPath = result.GetValue(outOption) is { } o ? CliErrors.OutputFile(o) : null;
            var machine = MachineInfo.Current();
            // --threads as `pargs serve` and `pargs generate` take it (default 1, their default), for the local engine, the
            // server and the client alike: left unset, libtorch took both cores while the table said 1, and its second
            // OpenMP thread spun between parallel regions (~18 % of the process's CPU in a profile) against the server's
            // worker and the client on the same two cores.
            ModelOptions.SetThreads(result.GetValue(threads));
            if (result.GetValue(shapes)!.FirstOrDefault(m => m is not ("260k" or "15m")) is { } unknownModel)
                throw new PargsException($"--models: unknown model \"{unknownModel}\" (expected 260k or 15m)");
            bool ownProcess = result.GetValue(serverSide) switch
            {
                "in-process" => false,
                "process" => true,
                var other => throw new PargsException($"--server {other}: expected in-process or process"),
            };
            // The 15M shape's random weights and id tokenizer exist only in this process: a pargs serve of its own cannot load them.
            if (ownProcess && result.GetValue(shapes)!.Contains("15m")) throw new PargsException("--server process: only --models 260k (the 15M shape's random pair exists only in this process)");
            foreach (string shape in result.GetValue(shapes)!)
            {
                // The local engine's pair; the server (in this process, or pargs serve in its own) loads its own copies: its
                // worker thread and this one must not share a model's caches.
                var local = shape == "15m" ? Pargs.Server.RemoteBenchmark.Random15M()
                    : Pargs.Server.RemoteBenchmark.Stories260K(ModelOptions.LoadLanguageModel(null, null), RewardModelFiles.Load(ShippedData.Find("data/models/stories260K-partial-rm")));
                var limits = new Pargs.Server.ServerLimits { MaxQueuedRequests = 2 * options.Rows.Max() + 2 };
                void Log(string line) => AnsiConsole.MarkupLine($"[grey]{Markup.Escape(line)}[/]");
                BenchTable table;
                try { table = ownProcess ? InItsOwnProcess(local, options, limits, Log) : InThisProcess(shape, local, options, limits, Log); }
                finally { local.Lm.Dispose(); }
                report(machine, Pargs.Models.Cpu.CpuThreads.Count.ToString(), table, "pargs " + string.Join(' ', Environment.GetCommandLineArgs().Skip(1)), outPath);
            }
            return 0;
        }));
        return command;
    }

    /// <summary>pargs serve hosted in this process, over its own copies of the pair.</summary>
    static BenchTable InThisProcess(string shape, Pargs.Server.RemoteBenchmark.Models local, Pargs.Server.RemoteBenchmarkOptions options,
        Pargs.Server.ServerLimits limits, Action<string> log)
    {
        using var models = shape == "15m" ? Pargs.Server.ServeBenchmark.Random15M().Models
            : new Pargs.Server.ServedModels()
                .AddRewardModel("stories260K-partial-rm", RewardModelFiles.Load(ShippedData.Find("data/models/stories260K-partial-rm")))
                .AddLanguageModel("stories260K", ModelOptions.LoadLanguageModel(null, null));
        var server = Pargs.Server.PargsServer.StartAsync(models, new Pargs.Server.PargsServerOptions { Port = 0, Limits = limits }).GetAwaiter().GetResult();
        try { return Pargs.Server.RemoteBenchmark.Run(server.Url, local, options, log); }
        finally { server.DisposeAsync().AsTask().GetAwaiter().GetResult(); }
    }

    /// <summary>`pargs serve` started as a process of its own with its defaults: the shipped stories260K and its partial RM, under the names the table's requests use.</summary>
    static BenchTable InItsOwnProcess(Pargs.Server.RemoteBenchmark.Models local, Pargs.Server.RemoteBenchmarkOptions options,
        Pargs.Server.ServerLimits limits, Action<string> log)
    {
        using var serve = ServeProcess.Start(["--threads", Pargs.Models.Cpu.CpuThreads.Count.ToString(), "--max-queue", limits.MaxQueuedRequests.ToString()], TimeSpan.FromSeconds(120));
        log($"pargs serve: process {serve.Id}, {serve.Url}");
        return Pargs.Server.RemoteBenchmark.Run(serve.Url, local, options, log, () => serve.Cpu);
    }
}
