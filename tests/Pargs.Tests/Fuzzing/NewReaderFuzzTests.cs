using Pargs.Rewards;
using Xunit.Abstractions;
using Pargs.Server;
using Pargs.Tests.Models.Encoders;

namespace Pargs.Tests.Fuzzing;

/// <summary>
/// The fuzzer over the readers this session added to the untrusted-input boundary: <c>pargs serve --config</c>'s JSON
/// file and an encoder reward model's config.json (BERT, DeBERTa-v3), and the config.json of the families added this session. Same invariant as <see cref="ReaderFuzzTests"/>:
/// success or a one-line PargsException, within the harness's time and allocation bounds.
/// </summary>
public class NewReaderFuzzTests(ITestOutputHelper output)
{
    static readonly Mutator Mutate = new(20261206);

    void Holds(List<FuzzFailure> failures)
    {
        foreach (var f in failures.Take(40)) output.WriteLine(f.ToString());
        Assert.True(failures.Count == 0, $"{failures.Count} inputs broke the invariant:\n{FuzzHarness.Summary(failures)}");
    }

    [Fact]
    public void Server_config_file()
    {
        const string config = """
            {"host": "127.0.0.1", "port": 8080, "api_key": "secret",
             "models": [{"name": "tiny", "path": "models/lm.gguf", "template": "auto", "reward_model": "partial"}],
             "reward_models": [{"name": "partial", "path": "rms/partial"}],
             "limits": {"max_queue": 4, "max_tokens": 99, "max_n": 2, "max_k": 8, "max_body_bytes": 65536, "grace_seconds": 2}}
            """;
        Holds(FuzzHarness.Run("server-config", FuzzHarness.Cases(120), c => Mutate.Json(config, c), "server.json", p => ServerConfigFile.Read(p)));
    }

    [Theory]
    [InlineData("gemma2")]
    [InlineData("gemma3")]
    [InlineData("phi3")]
    [InlineData("gpt_neox")]
    public void Config_json_of_the_new_families(string family)
    {
        using var temp = new TempDir();
        string seedFolder = temp.File("seed");
        Pargs.Checkpoints.ReferenceCheckpoints.Write(family, seedFolder);
        Pargs.Checkpoints.CheckpointLoader.Load(seedFolder).Dispose(); // the seed itself loads
        string json = File.ReadAllText(Path.Combine(seedFolder, "config.json"));
        Holds(FuzzHarness.Run($"config-json-{family}", FuzzHarness.Cases(40), c => Mutate.Json(json, c), "config.json",
            p => Pargs.Checkpoints.CheckpointLoader.Load(Path.GetDirectoryName(p)!).Dispose(),
            prepare: folder =>
            {
                foreach (var file in Directory.GetFiles(seedFolder).Where(f => Path.GetFileName(f) != "config.json"))
                    File.Copy(file, Path.Combine(folder, Path.GetFileName(file)));
            }));
    }

    [Theory]
    [InlineData("bert")]
    [InlineData("deberta-v2")]
    public void Encoder_config_json(string modelType)
    {
        using var temp = new TempDir();
        var config = modelType == "bert" ? TinyEncoders.Bert() : TinyEncoders.DebertaV3();
        string seedFolder = TinyEncoders.Write(temp.File("seed"), config, seed: 3);
        string json = File.ReadAllText(Path.Combine(seedFolder, "config.json"));
        string? label = modelType == "bert" ? "POSITIVE" : null; // the tiny BERT is a 2-label sentiment head
        EncoderRewardModel.Load(seedFolder, label); // the seed itself loads
        Holds(FuzzHarness.Run($"encoder-config-{modelType}", FuzzHarness.Cases(60), c => Mutate.Json(json, c), "config.json",
            p => EncoderRewardModel.Load(Path.GetDirectoryName(p)!, label),
            prepare: folder =>
            {
                foreach (var file in new[] { "model.safetensors", "tokenizer.json", "tokenizer_config.json" })
                    File.Copy(Path.Combine(seedFolder, file), Path.Combine(folder, file));
            }));
    }
}
