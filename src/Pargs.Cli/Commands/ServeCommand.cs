using System.CommandLine;
using Pargs.Server;

namespace Pargs.Cli.Commands;

/// <summary>
/// `pargs serve`: an OpenAI-compatible server (/v1/completions, /v1/chat/completions, /v1/models, /v1/rewards,
/// /health, /metrics) over models loaded at start. Binds 127.0.0.1 unless --host says otherwise (then --api-key is
/// required); with no --model it serves the shipped stories260K and its partial reward model.
/// </summary>
public static class ServeCommand
{
    const string ShippedModelName = "stories260K";
    const string ShippedRewardModelName = "stories260K-partial-rm";

    public static Command Create()
    {
        var model = new Option<string[]>("--model", "-m") { Description = "Language model to serve, as PATH or NAME=PATH (repeatable; requests name it by NAME, default: the file or folder name). Default: the shipped stories260K", AllowMultipleArgumentsPerToken = false };
        var rewardModel = new Option<string[]>("--reward-model", "-r") { Description = "Reward model to load (a folder, or a .gguf of a Llama-family reward model, decoded as stored as generate does), as PATH or NAME=PATH (repeatable); the first is the default guide. Default with no --model: the shipped partial RM", AllowMultipleArgumentsPerToken = false };
        var template = new Option<string>("--template") { Description = "Chat template for /v1/chat/completions: auto (each model's own chat template from its tokenizer_config.json, plain for a model without one) | plain | hh | chatml", DefaultValueFactory = _ => "auto" };
        var host = new Option<string>("--host") { Description = "IP address to bind (anything but loopback needs --api-key)", DefaultValueFactory = _ => "127.0.0.1" };
        var port = new Option<int>("--port") { Description = "Port (0 = any free port; the URL is printed)", DefaultValueFactory = _ => 8000 };
        var apiKey = new Option<string>("--api-key") { Description = "Require Authorization: Bearer KEY on /v1 and /metrics" };
        var maxQueue = new Option<int>("--max-queue") { Description = "Requests admitted at once (running + waiting); more get 429", DefaultValueFactory = _ => new ServerLimits().MaxQueuedRequests };
        var maxTokens = new Option<int>("--max-tokens") { Description = "Largest max_tokens a request may ask for", DefaultValueFactory = _ => new ServerLimits().MaxTokens };
        var prefixCache = new Option<double>("--prefix-cache-mb") { Description = "MiB of KV caches each model keeps for its prefix cache (a request extending a kept sequence computes only the new tokens; 0 = off); a causal reward model keeps as much again for steering clients' rows between their /v1/rewards requests", DefaultValueFactory = _ => new ServerLimits().PrefixCacheBytes / (double)(1 << 20) };
        var grace = new Option<double>("--grace-seconds") { Description = "On SIGTERM, how long running requests may finish", DefaultValueFactory = _ => new ServerLimits().ShutdownGrace.TotalSeconds };
        var threads = ModelOptions.Threads();
        var kvCache = ModelOptions.KvCache();
        var config = new Option<string>("--config") { Description = "A JSON server config (host, port, api_key, models [{name, path, template, reward_model}], reward_models [{name, path}], limits); flags given beside it override its host, port and api_key" };

        var command = new Command("serve", "Serve models over an OpenAI-compatible HTTP API (with reward-guided decoding).")
        {
            model, rewardModel, template, host, port, apiKey, maxQueue, maxTokens, grace, prefixCache, threads, kvCache, config,
        };
        command.SetAction(CliErrors.Action(result =>
        {
            ModelOptions.SetThreads(result.GetValue(threads));
            if (result.GetValue(maxQueue) < 1) throw new PargsException($"--max-queue must be at least 1, got {result.GetValue(maxQueue)}");
            if (result.GetValue(maxTokens) < 1) throw new PargsException($"--max-tokens must be at least 1, got {result.GetValue(maxTokens)}");
            if (!(result.GetValue(prefixCache) >= 0 && result.GetValue(prefixCache) <= 1 << 20)) throw new PargsException($"--prefix-cache-mb must be between 0 and {1 << 20}, got {result.GetValue(prefixCache)}");
            if (!(result.GetValue(grace) >= 0 && result.GetValue(grace) <= 3600)) throw new PargsException($"--grace-seconds must be between 0 and 3600, got {result.GetValue(grace)}");
            var cacheType = ModelOptions.ParseKvCache(result.GetValue(kvCache)!); // before any model loads
            bool Given(Option option) => result.GetResult(option) is { Implicit: false };
            var file = result.GetValue(config) is { } configPath ? ServerConfigFile.Read(configPath) : null; // checked whole before anything loads
            if (file is not null && (Given(model) || Given(rewardModel) || Given(template) || Given(maxQueue) || Given(maxTokens) || Given(grace) || Given(prefixCache)))
                throw new PargsException("--config names the models, reward models, templates and limits; give them there, not as flags too");
            string templateName = result.GetValue(template)!;
            if (!string.Equals(templateName, Pargs.Data.PromptTemplate.AutoName, StringComparison.OrdinalIgnoreCase))
                Pargs.Data.PromptTemplate.FromName(templateName, "--template"); // an unknown name fails before any model loads
            var limits = file?.Limits ?? new ServerLimits
            {
                MaxQueuedRequests = result.GetValue(maxQueue),
                MaxTokens = result.GetValue(maxTokens),
                ShutdownGrace = TimeSpan.FromSeconds(result.GetValue(grace)),
                PrefixCacheBytes = (long)(result.GetValue(prefixCache) * (1 << 20)),
            };
            var options = new PargsServerOptions
            {
                Host = Given(host) || file?.Host is null ? result.GetValue(host)! : file.Host,
                Port = Given(port) || file?.Port is null ? result.GetValue(port) : file.Port.Value,
                ApiKey = result.GetValue(apiKey) ?? file?.ApiKey,
                Limits = limits, ConsoleLog = true,
            };

            using var models = new ServedModels();
            if (file is not null)
            {
                foreach (var spec in file.RewardModels) models.AddRewardModel(spec.Name, RewardModelFiles.LoadForDecoding(spec.Path, storedPrecision: true));
                foreach (var spec in file.Models)
                    models.AddLanguageModel(spec.Name, ModelOptions.LoadLanguageModel(spec.Path, null, storedPrecision: true),
                        Pargs.Data.PromptTemplate.FromName(spec.Template, $"{result.GetValue(config)}: template of model \"{spec.Name}\"", spec.Path), spec.RewardModel);
            }
            else
            {
                var modelSpecs = result.GetValue(model) is { Length: > 0 } given ? given.Select(Named).ToList() : null;
                var rmSpecs = result.GetValue(rewardModel)?.Select(Named).ToList() ?? new();
                if (modelSpecs is null)
                {
                    modelSpecs = new() { (ShippedModelName, ShippedData.Find(ShippedData.DefaultModel)) };
                    if (rmSpecs.Count == 0) rmSpecs.Add((ShippedRewardModelName, ShippedData.Find("data/models/stories260K-partial-rm")));
                }
                foreach (var (name, path) in rmSpecs) models.AddRewardModel(name, RewardModelFiles.LoadForDecoding(path, storedPrecision: true));
                foreach (var (name, path) in modelSpecs)
                    models.AddLanguageModel(name, ModelOptions.LoadLanguageModel(path, null, storedPrecision: true), Pargs.Data.PromptTemplate.FromName(templateName, "--template", path));
            }

            foreach (var lm in models.LanguageModels) ModelOptions.ApplyKvCache(cacheType, lm.Model, null);
            foreach (var rm in models.RewardModels) ModelOptions.ApplyKvCache(cacheType, null, rm.Model);

            var server = PargsServer.StartAsync(models, options).GetAwaiter().GetResult();
            try
            {
                Console.WriteLine($"pargs serve: listening on {server.Url} (OpenAI base URL {server.Url}v1)");
                Console.WriteLine($"  models: {string.Join(", ", models.LanguageModels.Select(m => m.Name))}" +
                                  (models.RewardModels.Count > 0 ? $"; reward models: {string.Join(", ", models.RewardModels.Select(m => m.Name))}" : ""));
                Console.Out.Flush();
                server.WaitForShutdownAsync().GetAwaiter().GetResult();
            }
            finally
            {
                server.DisposeAsync().AsTask().GetAwaiter().GetResult();
            }
            Console.WriteLine("pargs serve: stopped");
            return 0;
        }));
        return command;
    }

    /// <summary>NAME=PATH, or PATH named by its file (without extension) or folder name.</summary>
    static (string Name, string Path) Named(string spec)
    {
        int eq = spec.IndexOf('=');
        if (eq > 0 && !File.Exists(spec) && !Directory.Exists(spec)) return (spec[..eq], spec[(eq + 1)..]);
        string trimmed = Path.TrimEndingDirectorySeparator(spec);
        string name = File.Exists(trimmed) ? Path.GetFileNameWithoutExtension(trimmed) : Path.GetFileName(trimmed);
        return (name, spec);
    }
}
