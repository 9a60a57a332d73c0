namespace Pargs.Tests.Cli;

/// <summary>The main commands run end to end on the shipped stories260K model.</summary>
public class CliSmokeTests
{
    [Fact]
    public void Info_describes_the_gguf()
    {
        var run = PargsCli.Succeeds("info", "--model", PargsCli.Stories260KGguf);
        Assert.Contains("gguf", run.Stdout);
        Assert.Contains("512", run.Stdout); // context and vocabulary
        Assert.Contains("260,032", run.Stdout); // parameters
    }

    [Fact]
    public void Greedy_generate_prints_the_prompt_and_a_continuation()
    {
        var run = PargsCli.Succeeds("generate", "--model", PargsCli.Stories260KGguf, "--method", "greedy", "--max-new-tokens", "5", "--threads", "1");
        string text = run.Stdout.Trim();
        Assert.StartsWith("Once upon a time", text);
        Assert.True(text.Length > "Once upon a time".Length + 3, run.ToString());
        Assert.Contains("[5 tokens", run.Stderr);
        // Greedy is deterministic: a second run prints the same text.
        Assert.Equal(text, PargsCli.Succeeds("generate", "--model", PargsCli.Stories260KGguf, "--method", "greedy", "--max-new-tokens", "5", "--threads", "1").Stdout.Trim());
    }

    [Fact]
    public void Generate_takes_unsaid_settings_from_generation_config_json()
    {
        using var dir = new TempDir();
        string folder = dir.File("lm");
        var config = Models.TinyModels.LlamaConfig(vocab: 512);
        using (var lm = Models.TinyModels.RandomLM(config))
            Pargs.Checkpoints.HuggingFaceFolder.Save(folder, config, lm.Architecture, lm.StateDictForSaving(),
                Pargs.Tokenizers.SentencePieceTokenizer.LoadLlama2c(TestPaths.Stories260KTokenizer),
                generation: new Pargs.Checkpoints.GenerationDefaults(Temperature: 0.7, TopK: 5, TopP: null, MaxNewTokens: 3, EosTokenIds: null));
        var run = PargsCli.Succeeds("generate", "--model", folder, "--method", "greedy", "--threads", "1");
        Assert.Contains("[3 tokens", run.Stderr);
        // What the command line says wins over the file.
        Assert.Contains("[4 tokens", PargsCli.Succeeds("generate", "--model", folder, "--method", "greedy", "--max-new-tokens", "4", "--threads", "1").Stderr);
    }
}
