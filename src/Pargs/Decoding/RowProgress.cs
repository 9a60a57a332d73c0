namespace Pargs.Decoding;

/// <summary>
/// One output row in progress: its tokens so far and why it stopped (eos, stop string, length). Once a row
/// is done it keeps riding along in the batch, but nothing more is appended to it.
/// </summary>
public sealed class RowProgress
{
    readonly DecodingContext context;

    readonly int[] promptIds;
    readonly string promptText;

    public RowProgress(DecodingContext context, int promptIndex, int sampleIndex, int[] promptIds)
    {
        this.context = context;
        this.promptIds = promptIds;
        promptText = context.Tokenizer.Decode(promptIds);
        PromptIndex = promptIndex;
        SampleIndex = sampleIndex;
    }

    public int PromptIndex { get; }
    public int SampleIndex { get; }
    public List<int> Tokens { get; } = new();
    public bool Done => FinishReason is not null;
    /// <summary>eos, stop, length — null while running.</summary>
    public string? FinishReason { get; private set; }
    /// <summary>The continuation text (cut before a stop string when one was hit).</summary>
    public string Text { get; private set; } = "";

    /// <summary>Appends the chosen token unless the row is done; updates text and stop state.</summary>
    public void Accept(int token)
    {
        if (Done) return;
        if (context.StopAtEos && context.EosId == token)
        {
            FinishReason = "eos";
            return;
        }
        Tokens.Add(token);
        // Decoded after the prompt, not alone: SentencePiece drops a sequence's leading space, which would
        // glue the continuation's first word to the prompt.
        string full = context.Tokenizer.Decode(promptIds.Concat(Tokens));
        Text = full.StartsWith(promptText, StringComparison.Ordinal) ? full[promptText.Length..] : context.Tokenizer.Decode(Tokens);
        foreach (var stop in context.StopStrings)
        {
            int at = Text.IndexOf(stop, StringComparison.Ordinal);
            if (at >= 0)
            {
                Text = Text[..at];
                FinishReason = "stop";
                return;
            }
        }
        if (Tokens.Count >= context.MaxNewTokens) FinishReason = "length";
    }
}

/// <summary>What every row of a run shares: tokenizer, EOS, limits.</summary>
public sealed record DecodingContext(Tokenizers.ITokenizer Tokenizer, int? EosId, bool StopAtEos, IReadOnlyList<string> StopStrings, int MaxNewTokens);
