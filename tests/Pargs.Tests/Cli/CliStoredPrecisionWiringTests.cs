using TorchSharp;
using System.Diagnostics;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Pargs.Checkpoints;
using Pargs.Cli.Commands;
using Pargs.Models;
using Pargs.Rewards;
using static TorchSharp.torch;

namespace Pargs.Tests.Cli;

/// <summary>
/// The stored-precision options reach every command that decodes: `pargs serve` loads a GGUF reward model as stored and
/// honours --kv-cache (its guided completion is the text `pargs generate` writes with the same files and options);
/// `pargs bench generate --gguf` honours --kv-cache and refuses it where it would be ignored; a bad value is one line.
/// </summary>
public class CliStoredPrecisionWiringTests : IDisposable
{
    readonly TempDir dir = new();
    public void Dispose() => dir.Dispose();

    /// <summary>A reward model on stories260K's backbone with a seeded head, written as an F16 GGUF (a stored-precision file).</summary>
    string RewardModelGguf()
    {
        string folder = dir.File("rm");
        using (var contents = CheckpointLoader.Load(TestPaths.Stories260KGguf))
        using (var rm = RewardModel.FromCausalLM(contents, seed: 5))
        {
            rm.Tokenizer = Pargs.Tokenizers.TokenizerLoader.ForCheckpoint(contents, null);
            using (no_grad())
            {
                using var twenty = 20f.ToScalar(); // held: see Pargs.Models.HeldScalars
                rm.ScoreWeight.mul_(twenty); // rewards that move PARGS's choices
            }
            rm.Save(folder, RewardObjective.Full, StoredType.F32);
        }
        string gguf = dir.File("rm-f16.gguf");
        GgufConverter.Convert(folder, gguf, GgufOutputType.F16);
        return gguf;
    }

    [Fact]
    public void Apply_kv_cache_sets_the_lm_and_the_causal_reward_models_caches()
    {
        string gguf = RewardModelGguf();
        using var lm = ModelOptions.LoadLanguageModel(TestPaths.Stories260KGguf, null, storedPrecision: true);
        using var rm = (RewardModel)RewardModelFiles.LoadForDecoding(gguf, storedPrecision: true);
        Assert.NotNull(rm.StoredWeights); // the GGUF reward model is decoded as stored, not expanded to float32
        ModelOptions.ApplyKvCache(KvCacheType.F16, lm, rm);
        Assert.Equal(KvCacheType.F16, lm.Backbone.KvCacheType);
        Assert.Equal(KvCacheType.F16, rm.Backbone.KvCacheType);
        using var session = new BatchSession(rm.Backbone, 1, 8);
        Assert.Equal(KvCacheType.F16, session.Cache.Type); // what decoding opens follows the setting
        ModelOptions.ApplyKvCache(KvCacheType.F32, lm, null);
        Assert.Equal(KvCacheType.F32, lm.Backbone.KvCacheType);
        Assert.Equal(KvCacheType.F16, rm.Backbone.KvCacheType);
    }

    [Fact]
    public async Task Serve_with_a_gguf_reward_model_and_an_f16_cache_answers_what_generate_writes()
    {
        string gguf = RewardModelGguf();
        var generated = PargsCli.Succeeds("generate", "--model", PargsCli.Stories260KGguf, "--reward-model", gguf, "--method", "pargs",
            "-k", "6", "-w", "1", "--seed", "2", "--max-new-tokens", "24", "--prompt", "Once upon a time", "--kv-cache", "f16");

        var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        foreach (var a in new[] { Path.Combine(AppContext.BaseDirectory, "Pargs.Cli.dll"), "serve", "--model", $"lm={PargsCli.Stories260KGguf}",
                                  "--reward-model", $"rm={gguf}", "--kv-cache", "f16", "--port", "0" })
            start.ArgumentList.Add(a);
        start.Environment["NO_COLOR"] = "1";
        using var server = Process.Start(start)!;
        var stderr = server.StandardError.ReadToEndAsync();
        try
        {
            string? url = null;
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(120);
            while (url is null && DateTime.UtcNow < deadline && server.StandardOutput.ReadLine() is { } line)
                if (Regex.Match(line, @"listening on (\S+)") is { Success: true } m) url = m.Groups[1].Value;
            Assert.True(url is not null, $"serve did not start: {(server.HasExited ? await stderr : "no URL printed")}");

            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(120) };
            string body = """{"model": "lm", "prompt": "Once upon a time", "method": "pargs", "reward_model": "rm", "k": 6, "w": 1, "seed": 2, "max_tokens": 24}""";
            using var response = await http.PostAsync(new Uri(new Uri(url), "v1/completions"), new StringContent(body, System.Text.Encoding.UTF8, "application/json"));
            string json = await response.Content.ReadAsStringAsync();
            Assert.True(response.IsSuccessStatusCode, json);
            string text = JsonNode.Parse(json)!["choices"]![0]!["text"]!.GetValue<string>();
            Assert.True(text.Length > 10, json);
            Assert.Contains("Once upon a time" + text, generated.Stdout);
        }
        finally
        {
            if (!server.HasExited) server.Kill(entireProcessTree: true);
            server.WaitForExit();
        }
    }

    [Fact]
    public void A_bad_kv_cache_value_is_one_line_for_serve_and_bench_generate()
    {
        PargsCli.Fails(["serve", "--kv-cache", "f8", "--port", "0"], "--kv-cache f8", "f32 or f16");
        PargsCli.Fails(["bench", "generate", "--kv-cache", "q8"], "--kv-cache q8", "f32 or f16");
    }

    [Fact]
    public void Bench_generate_honours_kv_cache_on_a_gguf_and_refuses_it_where_it_would_be_ignored()
    {
        var run = PargsCli.Succeeds("bench", "generate", "--gguf", PargsCli.Stories260KGguf, "--kv-cache", "f16", "--threads", "1", "--gguf-work", "4", "16", "1");
        Assert.Contains("KV cache f16", run.StdoutFlat);
        PargsCli.Fails(["bench", "generate", "--models", "260k", "--kv-cache", "f16"], "--kv-cache f16 applies to --gguf");
    }
}
