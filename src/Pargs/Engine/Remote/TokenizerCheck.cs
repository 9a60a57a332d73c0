using Pargs.Tokenizers;

namespace Pargs.Engine.Remote;

/// <summary>
/// Is the local tokenizer the server's? Token ids travel between them without text, so one id meaning two things would
/// steer with the wrong tokens silently. Compared: the vocabulary size where the server reports it, and the ids of a few
/// probe strings (ASCII, leading spaces, digits, accents, an emoji) through the server's tokenize endpoint where it has
/// one. A mismatch is refused with both values.
/// </summary>
public static class TokenizerCheck
{
    /// <summary>How many rows past its tokenizer a model's vocabulary may be padded and still count as the same.</summary>
    public const int PaddingAllowed = 1024;

    public static readonly string[] Probes =
    [
        "Once upon a time",
        " The quick brown fox jumps over the lazy dog.",
        "12345 + 678 = 13023",
        "naïve café, déjà vu — “quotes”",
        "emoji 🙂 and\ttabs\nnew lines",
    ];

    /// <summary>Runs the checks; returns what was compared and the server's vocabulary size where it reported one.</summary>
    public static (IReadOnlyList<string> Checks, int? VocabSize) Run(RemoteLmClient client, RemoteHttp http, RemoteModelFacts facts, ITokenizer tokenizer, string tokenizerSource)
    {
        var done = new List<string>();
        int? serverVocab = facts.VocabSize;
        foreach (var text in Probes)
        {
            var (probe, ours, ownText) = Probe(tokenizer, text);
            if (ownText && !done.Contains(OwnText)) done.Add(OwnText);
            var theirs = client.TokenizeAsync(http, facts.Model, probe).GetAwaiter().GetResult();
            if (theirs is null)
            {
                done.Add($"{client.BaseUrl} has no tokenize endpoint: probe strings not compared");
                break;
            }
            if (!theirs.SequenceEqual(ours))
                throw new PargsException($"the tokenizer {tokenizerSource} is not the server's: \"{Escape(probe)}\" is [{string.Join(", ", ours)}] here but [{string.Join(", ", theirs)}] at {client.BaseUrl}");
            if (client is OpenAiCompletionsClient { LastVocabSize: { } reported }) serverVocab ??= reported;
        }
        if (done.Count == 0 || done is [OwnText]) done.Add($"{Probes.Length} probe strings tokenize identically here and at {client.BaseUrl}");
        if (serverVocab is { } vocab)
        {
            // A model's embedding table may be padded past its tokenizer (Qwen2.5: 151,936 rows for 151,665 tokens), never short of it.
            if (vocab < tokenizer.VocabSize || vocab - tokenizer.VocabSize > PaddingAllowed)
                throw new PargsException($"the tokenizer {tokenizerSource} has {tokenizer.VocabSize} tokens but the model at {client.BaseUrl} has {vocab}: they do not belong together");
            done.Add(vocab == tokenizer.VocabSize ? $"vocabulary size {vocab} on both sides" : $"vocabulary: {tokenizer.VocabSize} tokens here, a table of {vocab} (padded) at the server");
        }
        else done.Add($"{client.BaseUrl} does not report its vocabulary size: every returned id is checked against the local {tokenizer.VocabSize}");
        return (done, serverVocab);
    }

    /// <summary>
    /// The probe to send for <paramref name="text"/> and its ids here (BOS as the tokenizer adds it). A tokenizer that writes
    /// only its own notation (the benchmarks' id tokenizer: "&lt;17&gt;&lt;4&gt;") refuses free text: it is probed with the
    /// text of a few of its own ids instead (<c>OwnText</c> true).
    /// </summary>
    public static (string Probe, int[] Ids, bool OwnText) Probe(ITokenizer tokenizer, string text)
    {
        try { return (text, tokenizer.Encode(text, addBos: true), false); }
        catch (PargsException)
        {
            string probe = tokenizer.Decode(Enumerable.Range(0, 5).Select(i => (int)((long)tokenizer.VocabSize * (2 * i + 1) / 10)).ToArray(), skipSpecial: true);
            return (probe, tokenizer.Encode(probe, addBos: true), true);
        }
    }

    const string OwnText = "the local tokenizer refused the free-text probes: probed with the text of its own ids";

    static string Escape(string text) => text.Replace("\n", "\\n").Replace("\t", "\\t");
}
