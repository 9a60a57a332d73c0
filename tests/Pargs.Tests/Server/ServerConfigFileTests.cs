using Pargs.Server;
using Pargs.Tests.Cli;

namespace Pargs.Tests.Server;

/// <summary><c>pargs serve --config FILE</c>: several models and reward models from one checked JSON file.</summary>
public class ServerConfigFileTests
{
    [Fact]
    public void A_config_names_models_reward_models_and_limits_with_paths_relative_to_the_file()
    {
        using var dir = new TempDir();
        Directory.CreateDirectory(dir.File("conf"));
        string path = dir.File("conf/server.json");
        File.WriteAllText(path, """
            {"host": "127.0.0.1", "port": 0, "api_key": "k",
             "models": [{"name": "tiny", "path": "../models/lm.gguf", "reward_model": "partial"},
                        {"name": "chat", "path": "/abs/model", "template": "chatml"}],
             "reward_models": [{"name": "partial", "path": "rms/partial"}],
             "limits": {"max_queue": 4, "max_tokens": 99, "max_k": 8, "grace_seconds": 2, "prefix_cache_mb": 3}}
            """);
        var config = ServerConfigFile.Read(path);
        Assert.Equal(0, config.Port);
        Assert.Equal("k", config.ApiKey);
        Assert.Equal(new ServedModelSpec("tiny", Path.GetFullPath(dir.File("models/lm.gguf")), "auto", "partial"), config.Models[0]);
        Assert.Equal(new ServedModelSpec("chat", "/abs/model", "chatml", null), config.Models[1]);
        Assert.Equal(new ServedRewardModelSpec("partial", Path.GetFullPath(dir.File("conf/rms/partial"))), config.RewardModels.Single());
        Assert.Equal(4, config.Limits.MaxQueuedRequests);
        Assert.Equal(99, config.Limits.MaxTokens);
        Assert.Equal(8, config.Limits.MaxK);
        Assert.Equal(new ServerLimits().MaxN, config.Limits.MaxN);
        Assert.Equal(TimeSpan.FromSeconds(2), config.Limits.ShutdownGrace);
        Assert.Equal(3L << 20, config.Limits.PrefixCacheBytes);
    }

    [Theory]
    [InlineData("""{"models": [{"name": "a", "path": "x"}], "prot": 1}""", "$.prot: unknown key")]
    [InlineData("""{"models": [{"name": "a", "path": 5}]}""", "$.models[0].path")]
    [InlineData("""{"models": []}""", "lists no model")]
    [InlineData("""{"models": [{"name": "a", "path": "x"}, {"name": "a", "path": "y"}]}""", "given twice")]
    [InlineData("""{"models": [{"name": "a", "path": "x", "reward_model": "rm"}]}""", "names no reward model")]
    [InlineData("""{"models": [{"name": "../etc", "path": "x"}]}""", "is not a model name")]
    [InlineData("""{"models": [{"name": "a", "path": "x", "template": "llama"}]}""", "$.models[0].template")]
    [InlineData("""{"models": [{"name": "a", "path": "x"}], "limits": {"max_queue": 0}}""", "$.limits.max_queue")]
    [InlineData("""{"models": [{"name": "a", "path": "x"}], "port": 70000}""", "$.port")]
    [InlineData("""{"models": [{"name": "a", "path": "x"}], "limits": {"prefix_cache_mb": -1}}""", "$.limits.prefix_cache_mb")]
    [InlineData("""[]""", "expected an object")]
    public void A_bad_config_is_one_line_naming_the_file_and_the_json_path(string json, string expected)
    {
        using var dir = new TempDir();
        string path = dir.File("server.json");
        File.WriteAllText(path, json);
        var error = Assert.Throws<PargsException>(() => ServerConfigFile.Read(path));
        Assert.StartsWith(path, error.Message);
        Assert.Contains(expected, error.Message);
        Assert.DoesNotContain('\n', error.Message);
    }

    [Fact]
    public void Serve_refuses_a_bad_config_before_loading_anything_and_config_beside_model_flags()
    {
        using var dir = new TempDir();
        string path = dir.File("server.json");
        File.WriteAllText(path, """{"models": [{"name": "a", "path": "missing-model"}], "limits": {"max_k": "many"}}""");
        PargsCli.Fails(["serve", "--config", path, "--port", "0"], "server.json", "$.limits.max_k");
        File.WriteAllText(path, """{"models": [{"name": "a", "path": "x"}]}""");
        PargsCli.Fails(["serve", "--config", path, "--model", "x", "--port", "0"], "give them there, not as flags too");
    }
}
