using System.Diagnostics;
using Pargs.Checkpoints;

namespace Pargs.Tests.Cli;

/// <summary>
/// `pargs generate` with an LM-only method on a stored-precision GGUF runs on the host engine, and libtorch is never
/// loaded in that process: the child runs with glibc's LD_DEBUG=files, which names every shared object the loader maps
/// (dlopen included). It prints what the torch engine decodes on the same file; the same command on the torch path
/// (--naive) maps libtorch — the control that the detector sees it.
/// </summary>
public class CliHostGenerateTests : IDisposable
{
    readonly TempDir dir = new();
    public void Dispose() => dir.Dispose();

    static (CliRun Run, bool LibTorchLoaded) Generate(params string[] args)
    {
        var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "Pargs.Cli.dll"));
        start.ArgumentList.Add("generate");
        foreach (var a in args) start.ArgumentList.Add(a);
        start.Environment["NO_COLOR"] = "1";
        start.Environment["LD_DEBUG"] = "files";
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromSeconds(120)))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"pargs generate {string.Join(' ', args)} ran longer than 120 s");
        }
        process.WaitForExit();
        string err = stderr.Result;
        bool loaded = err.Split('\n').Any(l => l.Contains("file=", StringComparison.Ordinal) && l.Contains("libtorch_cpu.so", StringComparison.Ordinal));
        // What the user sees, without the loader's trace.
        string userErr = string.Join('\n', err.Split('\n').Where(l => !System.Text.RegularExpressions.Regex.IsMatch(l, @"^\s*\d+:")));
        var run = new CliRun(process.ExitCode, stdout.Result, userErr);
        Assert.True(run.ExitCode == 0, $"expected exit 0\n{run}");
        return (run, loaded);
    }

    [Theory]
    [InlineData("greedy")]
    [InlineData("topp")]
    public void Generate_on_a_gguf_with_an_lm_only_method_never_loads_libtorch(string method)
    {
        string gguf = dir.File("llama-q8_0.gguf");
        ReferenceCheckpoints.WriteGguf("llama", gguf, GgufOutputType.Q8_0);
        string prompt = ReferenceCheckpoints.PromptText;
        var (host, hostLoadedTorch) = Generate("--model", gguf, "--method", method, "--max-new-tokens", "6", "-p", prompt, "--seed", "3");
        Assert.False(hostLoadedTorch, $"libtorch_cpu.so was loaded on the host engine's path\n{host}");
        Assert.Contains("[6 tokens", host.Stderr);

        // The same request on the torch engine over the same mapped file, in this process: the same text.
        using var lm = Pargs.Models.CausalLM.LoadForInference(gguf);
        var options = new Pargs.Decoding.DecodingOptions
        {
            Method = method == "greedy" ? new Pargs.Decoding.Methods.GreedyOptions() : new Pargs.Decoding.Methods.TopPOptions(),
            MaxNewTokens = 6, Seed = 3,
        };
        var expected = Pargs.Decoding.TextGenerator.Generate(lm, null, [prompt], options)[0];
        Assert.Equal(prompt + expected.Output, host.Stdout.TrimEnd('\n'));

        // The control: the torch path (--naive) maps libtorch, so the detector sees it when it is there.
        var (_, torchLoadedTorch) = Generate("--model", gguf, "--method", method, "--max-new-tokens", "2", "-p", prompt, "--naive");
        Assert.True(torchLoadedTorch, "the detector did not see libtorch on the torch path");
    }
}
