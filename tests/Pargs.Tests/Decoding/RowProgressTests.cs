using Pargs.Decoding;
using Pargs.Tests.Data;
using Pargs.Tokenizers;

namespace Pargs.Tests.Decoding;

public class RowProgressTests
{
    /// <summary>
    /// What RowProgress used to compute afresh every token: decode prompt + continuation and cut the prompt's
    /// text; then cut before a stop string. The incremental row must agree with it after every token. Two
    /// deliberate differences from the old code: when one token completes two stop strings the cut is before
    /// the earlier one (the old code took the first in list order), and a prompt that ends inside a character
    /// is replaced here by a one-token prompt: its continuation is defined as its own bytes decoded, as after a
    /// prompt that ends at a character boundary.
    /// </summary>
    sealed class FullDecodeReference(DecodingContext context, int[] promptIds)
    {
        readonly int[] promptIds = context.Tokenizer.Decode(promptIds).EndsWith('\uFFFD') ? context.Tokenizer.Encode("A") : promptIds;
        string promptText => context.Tokenizer.Decode(promptIds);
        public List<int> Tokens { get; } = new();
        public string Text { get; private set; } = "";
        public string? FinishReason { get; private set; }

        public void Accept(int token)
        {
            if (FinishReason is not null) return;
            if (context.StopAtEos && context.EosId == token) { FinishReason = "eos"; return; }
            Tokens.Add(token);
            string full = context.Tokenizer.Decode(promptIds.Concat(Tokens));
            Text = full.StartsWith(promptText, StringComparison.Ordinal) ? full[promptText.Length..] : context.Tokenizer.Decode(Tokens);
            int at = context.StopStrings.Select(s => Text.IndexOf(s, StringComparison.Ordinal)).Where(i => i >= 0).DefaultIfEmpty(-1).Min();
            if (at >= 0) { Text = Text[..at]; FinishReason = "stop"; return; }
            if (Tokens.Count >= context.MaxNewTokens) FinishReason = "length";
        }
    }

    public static TheoryData<string> Tokenizers => new() { "sentencepiece", "gpt2", "bytes" };

    static ITokenizer Tokenizer(string name) => name switch
    {
        "sentencepiece" => CrossTokenizerModels.SentencePiece,
        "gpt2" => CrossTokenizerModels.Gpt2,
        _ => new ByteTestTokenizer(),
    };

    [Theory]
    [MemberData(nameof(Tokenizers))]
    public void Incremental_text_equals_decoding_the_whole_sequence_after_every_token(string name)
    {
        var tok = Tokenizer(name);
        var random = new Random(17);
        // Continuations mix ordinary tokens, special tokens and byte tokens that split characters (emoji,
        // accented letters) or are invalid on their own.
        var texts = new[] { "Once upon a time", " the cat sat.", "café 😀 naïve", "🦄!", " x" };
        var pieces = texts.SelectMany(t => tok.Encode(t)).Distinct().ToList();
        var bytePieces = Enumerable.Range(0, 256).Select(b => (byte)b)
            .Where(b => b >= 0x80 || b == (byte)' ').Select(b => CrossTokenizerModels.ByteToken(tok, b)).Where(id => id >= 0).ToList();
        var specials = Enumerable.Range(0, tok.VocabSize).Where(tok.IsSpecial).Take(3).ToList();
        var prompts = new List<int[]>
        {
            tok.BosId is int bos ? [bos] : tok.Encode("A"),                    // no visible prompt text
            tok.Encode("Lily saw", addBos: true),                               // ordinary prompt
            tok.Encode("Lily saw 😀", addBos: true)[..^1],                      // ends inside a character
        };
        int checkedSteps = 0;
        foreach (var prompt in prompts)
            foreach (var stops in new[] { Array.Empty<string>(), new[] { "cat", "😀", ". " } })
                for (int trial = 0; trial < 12; trial++)
                {
                    var context = new DecodingContext(tok, tok.EosId, trial % 3 == 0, stops, 40);
                    var row = new RowProgress(context, 0, 0, prompt);
                    var reference = new FullDecodeReference(context, prompt);
                    for (int step = 0; step < 40 && !row.Done; step++)
                    {
                        int r = random.Next(10);
                        int token = r < 5 ? pieces[random.Next(pieces.Count)]
                            : r < 9 || specials.Count == 0 ? bytePieces[random.Next(bytePieces.Count)]
                            : specials[random.Next(specials.Count)];
                        row.Accept(token);
                        reference.Accept(token);
                        Assert.Equal(reference.Tokens, row.Tokens);
                        Assert.Equal(reference.FinishReason, row.FinishReason);
                        Assert.Equal(reference.Text, row.Text);
                        checkedSteps++;
                    }
                }
        Assert.True(checkedSteps > 1000, $"only {checkedSteps} steps compared");
    }

    [Fact]
    public void A_prompt_of_only_the_space_piece_keeps_the_continuations_space()
    {
        // "▁" alone: the whole-sequence decode drops the prompt's space (the dummy prefix), not the continuation's.
        var tok = CrossTokenizerModels.SentencePiece;
        int space = CrossTokenizerModels.ByteToken(tok, (byte)' ');
        var context = new DecodingContext(tok, tok.EosId, true, Array.Empty<string>(), 10);
        var row = new RowProgress(context, 0, 0, [tok.BosId!.Value, space]);
        row.Accept(space);
        row.Accept(space);
        Assert.Equal("  ", row.Text);
        Assert.Equal(tok.Decode([tok.BosId!.Value, space, space, space]), row.Text);
    }

    [Fact]
    public void One_token_completing_two_stop_strings_cuts_before_the_earlier()
    {
        var tok = new ByteTestTokenizer(mergeColonSpace: true);
        var context = new DecodingContext(tok, tok.EosId, true, new[] { " ", ":" }, 100);
        var row = new RowProgress(context, 0, 0, tok.Encode("x", addBos: true));
        foreach (var id in tok.Encode("ab: ")) row.Accept(id); // "ab" then the one token ": "
        Assert.Equal("stop", row.FinishReason);
        Assert.Equal("ab", row.Text);
    }

    [Fact]
    public void Stop_string_completed_by_a_later_token_cuts_the_text_before_it()
    {
        var tok = new ByteTestTokenizer();
        var context = new DecodingContext(tok, tok.EosId, true, new[] { "END" }, 100);
        var row = new RowProgress(context, 0, 0, tok.Encode("x", addBos: true));
        foreach (var id in tok.Encode("abcEN")) row.Accept(id);
        Assert.False(row.Done);
        Assert.Equal("abcEN", row.Text);
        row.Accept(tok.Encode("D")[0]);
        Assert.Equal("stop", row.FinishReason);
        Assert.Equal("abc", row.Text);
        row.Accept(tok.Encode("z")[0]); // a finished row takes no more tokens
        Assert.Equal("abc", row.Text);
        Assert.Equal(6, row.Tokens.Count);
    }
}
