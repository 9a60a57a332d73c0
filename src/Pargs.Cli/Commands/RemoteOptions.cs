using System.CommandLine;
using Pargs.Checkpoints;
using Pargs.Engine;
using Pargs.Engine.Remote;
using Pargs.Rewards;
using Pargs.Rewards.Remote;
using Pargs.Tokenizers;

namespace Pargs.Cli.Commands;

/// <summary>
/// `generate`'s remote backends: --lm-url/--lm-protocol (a language model served by vLLM, llama.cpp, SGLang or
/// pargs serve, steered with the local --tokenizer) and --rm-url/--rm-protocol (a reward model served by pargs serve,
/// text-embeddings-inference or vLLM). Kept apart from GenerateCommand so the two change independently (docs/remote.md).
/// </summary>
public sealed class RemoteOptions
{
    readonly Option<string> lmUrl = new("--lm-url") { Description = "Steer a language model served at this URL (with --lm-protocol and --tokenizer; docs/remote.md)" };
    readonly Option<string> lmProtocol = new("--lm-protocol") { Description = "openai (vLLM, pargs serve) | llamacpp | sglang", DefaultValueFactory = _ => "openai" };
    readonly Option<string> lmModel = new("--lm-model") { Description = "The served model's name (openai protocol; default: the first listed)" };
    readonly Option<string> rmUrl = new("--rm-url") { Description = "Guide with a reward model served at this URL (with --rm-protocol)" };
    readonly Option<string> rmProtocol = new("--rm-protocol") { Description = "pargs | tei | vllm", DefaultValueFactory = _ => "pargs" };
    readonly Option<string> rmModel = new("--rm-model") { Description = "The served reward model's name (pargs, vllm; default: the first listed)" };
    readonly Option<int> concurrency = new("--remote-concurrency") { Description = "Requests in flight at once per server", DefaultValueFactory = _ => 16 };
    readonly Option<string> apiKey = new("--remote-api-key") { Description = "Sent as Authorization: Bearer KEY to the servers" };

    public void AddTo(Command command)
    {
        foreach (var option in new Option[] { lmUrl, lmProtocol, lmModel, rmUrl, rmProtocol, rmModel, concurrency, apiKey }) command.Options.Add(option);
    }

    public bool RemoteLm(ParseResult result) => result.GetValue(lmUrl) is not null;

    /// <summary>--remote-concurrency as given (or its default).</summary>
    public int Concurrency(ParseResult result) => result.GetValue(concurrency);

    /// <summary>`generate --decoders` when --lm-url is given and --decoders is not: batches in flight at once (docs/remote.md).</summary>
    public const int DefaultDecoders = 4;

    /// <summary>Connects to --lm-url (checking the tokenizer against the server's), or null without one.</summary>
    public RemoteEngine? ConnectLm(ParseResult result, string? tokenizerPath, int topK)
    {
        if (result.GetValue(lmUrl) is not { } url) return null;
        if (tokenizerPath is null) throw new PargsException("--lm-url needs --tokenizer: the local copy of the served model's tokenizer (tokenizer.json, its folder, or a .gguf)");
        var tokenizer = LoadTokenizer(tokenizerPath);
        var engine = RemoteEngine.Connect(new RemoteLmOptions
        {
            Url = ParseUrl(url, "--lm-url"),
            Protocol = RemoteLmOptions.ParseProtocol(result.GetValue(lmProtocol)!),
            Model = result.GetValue(lmModel),
            TopK = topK,
            Concurrency = result.GetValue(concurrency),
            ApiKey = result.GetValue(apiKey),
        }, tokenizer, tokenizerSource: tokenizerPath);
        foreach (var check in engine.TokenizerChecks) Console.Error.WriteLine($"tokenizer check: {check}");
        return engine;
    }

    /// <summary>The reward model at --rm-url, scoring the text of <paramref name="lm"/>, or null without one.</summary>
    public RemoteRewardModel? ConnectRm(ParseResult result, LanguageModelInfo lm)
    {
        if (result.GetValue(rmUrl) is not { } url) return null;
        var rm = new RemoteRewardModel(new RemoteRmOptions
        {
            Url = ParseUrl(url, "--rm-url"),
            Protocol = RemoteRmOptions.ParseProtocol(result.GetValue(rmProtocol)!),
            Model = result.GetValue(rmModel),
            Concurrency = result.GetValue(concurrency),
            ApiKey = result.GetValue(apiKey),
        }, lm);
        Console.Error.WriteLine($"reward model candidates as {rm.TokenizerCheck}");
        return rm;
    }

    static Uri ParseUrl(string text, string option)
        => Uri.TryCreate(text, UriKind.Absolute, out var url) && url.Scheme is "http" or "https" ? url
            : throw new PargsException($"{option} {text}: expected an http:// or https:// address");

    /// <summary>A tokenizer.json, a Hugging Face folder holding one, a .gguf's vocabulary, or a llama2.c tokenizer .bin.</summary>
    static ITokenizer LoadTokenizer(string path)
    {
        if (Directory.Exists(path))
        {
            string file = Path.Combine(path, "tokenizer.json");
            if (!File.Exists(file)) throw new PargsException($"{path}: no tokenizer.json in the folder");
            return TokenizerJson.Load(file);
        }
        return TokenizerLoader.FromFile(path); // a .gguf's vocabulary alone: loading the model (and keeping it) for it cost its weights
    }
}
