namespace Pargs.Tests.Cli;

/// <summary>
/// Two `pargs generate -o same.jsonl` processes at once: each writes a whole file under a temporary name of its own
/// and renames it over the target, so the file ends as one run's complete output — never a mix, never torn — and no
/// temporary file is left behind (issue 13: 5 of 25 rounds used to end torn, both runs sharing same.jsonl.tmp).
/// </summary>
public class CliSharedOutputTests
{
    [Fact]
    public async Task Two_generate_runs_writing_one_path_leave_one_whole_file()
    {
        using var dir = new TempDir();
        string prompts = dir.File("prompts.txt");
        File.WriteAllLines(prompts, Enumerable.Range(0, 6).Select(i => $"Once upon a time {i}"));
        string output = dir.File("same.jsonl");
        string[] Args(int seed) => ["generate", "--model", PargsCli.Stories260KGguf, "--prompts", prompts, "-o", output,
                                    "--method", "topk", "-k", "5", "--seed", seed.ToString(), "--max-new-tokens", "24", "--threads", "1"];

        // What each run writes alone.
        PargsCli.Succeeds(Args(1));
        string alone1 = File.ReadAllText(output);
        PargsCli.Succeeds(Args(2));
        string alone2 = File.ReadAllText(output);
        Assert.NotEqual(Normalise(alone1), Normalise(alone2));

        for (int round = 0; round < 3; round++)
        {
            File.Delete(output);
            var runs = new[] { 1, 2 }.Select(seed => Task.Run(() => PargsCli.Run(Args(seed)))).ToArray();
            foreach (var result in await Task.WhenAll(runs)) Assert.True(result.ExitCode == 0, result.ToString());
            string final = Normalise(File.ReadAllText(output));
            Assert.True(final == Normalise(alone1) || final == Normalise(alone2), $"round {round}: the file is neither run's whole output:\n{final}");
            Assert.Equal(["prompts.txt", "same.jsonl"], Directory.GetFiles(dir.Path).Select(f => Path.GetFileName(f)).Order().ToArray());
        }
    }

    /// <summary>The records without their timings (seconds differ between runs).</summary>
    static string Normalise(string jsonl) => string.Join('\n', jsonl.Split('\n', StringSplitOptions.RemoveEmptyEntries)
        .Select(line => System.Text.RegularExpressions.Regex.Replace(line, "\"seconds\":[0-9.eE+-]+", "\"seconds\":0")));
}
