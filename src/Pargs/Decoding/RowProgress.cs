using Pargs.Tokenizers;

namespace Pargs.Decoding;

/// <summary>
/// One output row in progress: its tokens so far and why it stopped (eos, stop string, length). Once a row
/// is done it keeps riding along in the batch, but nothing more is appended to it.
/// </summary>
public sealed class RowProgress
{
    readonly DecodingContext context;
    // The continuation's text, decoded one token at a time (O(1) per token). WHY: decoding prompt + tokens
    // afresh every step made each token cost O(sequence) — 0.045 ms of a 0.25 ms stories260K top-k step at a
    // 64-token prompt, and quadratic over long generations (docs/benchmarks.md).
    readonly StreamingDecoder decoder;
    readonly int longestStop;
    string? text; // Text, built when read; null after a token changed it
    string? stoppedText; // the text cut before a stop string, once one was hit

    public RowProgress(DecodingContext context, int promptIndex, int sampleIndex, int[] promptIds)
    {
        this.context = context;
        PromptIndex = promptIndex;
        SampleIndex = sampleIndex;
        // The continuation reads as it does at the end of decoding prompt + continuation: SentencePiece's
        // dummy-prefix space is dropped only when no prompt token has any bytes (e.g. BOS alone), exactly where
        // the whole-sequence decode would drop it from the continuation. A prompt of ids that ends inside a
        // character (byte pieces; never an encoded string) does not share that character with the
        // continuation: the continuation's bytes are decoded as its own.
        var tokenizer = context.Tokenizer;
        bool promptHasBytes = promptIds.Any(id => !tokenizer.IsSpecial(id) && tokenizer.TokenBytes(id).Length > 0);
        decoder = new StreamingDecoder(tokenizer, atSequenceStart: !promptHasBytes);
        longestStop = context.StopStrings.Count == 0 ? 0 : context.StopStrings.Max(s => s.Length);
    }

    public int PromptIndex { get; }
    public int SampleIndex { get; }
    public List<int> Tokens { get; } = new();
    public bool Done => FinishReason is not null;
    /// <summary>The EOS id that ended the row (one of several a model may have), when it ended at one.</summary>
    public int? EosToken { get; private set; }
    /// <summary>eos, stop, length — null while running.</summary>
    public string? FinishReason { get; private set; }

    /// <summary>
    /// The continuation text (cut before a stop string when one was hit). Bytes of a character that the tokens
    /// so far leave unfinished show as U+FFFD, as decoding the whole sequence would show them.
    /// </summary>
    public string Text => stoppedText ?? (text ??= decoder.Text + Unfinished);

    string Unfinished => decoder.EndsInsideCharacter ? "\uFFFD" : "";

    /// <summary>Appends the chosen token unless the row is done; updates text and stop state.</summary>
    public void Accept(int token)
    {
        if (Done) return;
        if (context.StopAtEos && (context.EosId == token || context.MoreEosIds.Contains(token)))
        {
            FinishReason = "eos";
            EosToken = token;
            return;
        }
        Tokens.Add(token);
        // Completed text only grows, and every earlier search saw it: a stop string can only end in what this
        // token added, so the search starts longestStop − 1 characters before it. When one token completes two
        // stop strings, the text is cut before the earlier of them (whatever their order in the list).
        int searchFrom = Math.Max(0, decoder.Length - Math.Max(longestStop - 1, 0));
        decoder.Push(token);
        text = null;
        if (longestStop > 0)
        {
            string recent = decoder.TextFrom(searchFrom) + Unfinished;
            int at = context.StopStrings.Select(stop => recent.IndexOf(stop, StringComparison.Ordinal))
                .Where(i => i >= 0).DefaultIfEmpty(-1).Min();
            if (at >= 0)
            {
                stoppedText = decoder.Text[..(searchFrom + at)];
                FinishReason = "stop";
                return;
            }
        }
        if (Tokens.Count >= context.MaxNewTokens) FinishReason = "length";
    }
}

/// <summary>What every row of a run shares: tokenizer, EOS, limits.</summary>
public sealed record DecodingContext(ITokenizer Tokenizer, int? EosId, bool StopAtEos, IReadOnlyList<string> StopStrings, int MaxNewTokens)
{
    /// <summary>Further ids that end a row as <see cref="EosId"/> does (a model's list of EOS ids).</summary>
    public IReadOnlyCollection<int> MoreEosIds { get; init; } = [];
}
