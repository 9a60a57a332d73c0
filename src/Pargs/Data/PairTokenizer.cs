using Pargs.Tokenizers;

namespace Pargs.Data;

/// <summary>
/// Turns text <see cref="PreferencePair"/>s into <see cref="TokenizedPair"/>s for partial-reward training.
/// The pair's prompt is already rendered by the <see cref="PromptTemplate"/> when it was read (the template is
/// applied exactly once, in <see cref="PreferenceReader"/>, because HH-RLHF dialogues arrive already rendered);
/// decoding must render prompts with that same template. BOS is added when the tokenizer has one.
/// </summary>
public sealed class PairTokenizer(ITokenizer tokenizer, PairTokenizerOptions? options = null)
{
    readonly PairTokenizerOptions _options = options ?? new PairTokenizerOptions();

    /// <param name="sourceName">Where the pairs came from (a file path), for error messages.</param>
    public PairTokenizeResult Tokenize(IReadOnlyList<PreferencePair> pairs, string sourceName = "pairs")
    {
        int eos = _options.EosId ?? tokenizer.EosId
            ?? throw new PargsException("The tokenizer has no EOS token (expected one to pad responses; set PairTokenizerOptions.EosId).");
        int vocabSize = _options.VocabSize ?? tokenizer.VocabSize;
        if (eos < 0 || eos >= vocabSize)
            throw new PargsException($"EOS id {eos} is outside the vocabulary of size {vocabSize} (expected 0 ≤ id < {vocabSize}).");
        bool addBos = tokenizer.BosId != null;

        var kept = new List<TokenizedPair>();
        int tooLong = 0, tooShort = 0, fallbacks = 0, longest = 0;
        for (int index = 0; index < pairs.Count; index++)
        {
            var pair = pairs[index];
            string where = $"{sourceName}:{pair.SourceLine}";
            int[] promptIds = Checked(tokenizer.Encode(pair.Prompt, addBos), vocabSize, where, "prompt");
            int[] chosenIds = Checked(ResponseIds(pair.Prompt, promptIds, pair.Chosen, addBos, ref fallbacks), vocabSize, where, "chosen");
            int[] rejectedIds = Checked(ResponseIds(pair.Prompt, promptIds, pair.Rejected, addBos, ref fallbacks), vocabSize, where, "rejected");

            int responseLength = Math.Max(chosenIds.Length, rejectedIds.Length);
            if (promptIds.Length + responseLength > _options.MaxLength) { tooLong++; continue; }
            if (chosenIds.Length == 0 || rejectedIds.Length == 0) { tooShort++; continue; }

            var tokenized = PartialPairs.Build(promptIds, chosenIds, rejectedIds, eos, _options.PartialPairs, pair.Margin, index, pair.SourceLine);
            if (tokenized.PrefixLengths.Length == 0) { tooShort++; continue; }
            kept.Add(tokenized);
            longest = Math.Max(longest, tokenized.SequenceLength);
        }
        return new PairTokenizeResult(kept, new PairTokenizeReport(pairs.Count, kept.Count, tooLong, tooShort, fallbacks, longest));
    }

    /// <summary>
    /// The response tokenized as the continuation of the prompt: ids(prompt + response) minus the prompt's ids.
    /// That is how the text looks to the model at decoding time (SentencePiece-style tokenizers would otherwise add a
    /// dummy-prefix space to a separately encoded response). If the tokenizer merges across the boundary (the prompt's
    /// ids are not a prefix of the whole), we fall back to tokenizing the response alone, without BOS: the prompt ids
    /// must stay identical for chosen and rejected, since both sides share one <see cref="TokenizedPair.PromptIds"/>.
    /// </summary>
    int[] ResponseIds(string prompt, int[] promptIds, string response, bool addBos, ref int fallbacks)
    {
        int[] whole = tokenizer.Encode(prompt + response, addBos);
        if (whole.Length > promptIds.Length && whole.AsSpan(0, promptIds.Length).SequenceEqual(promptIds))
            return whole[promptIds.Length..];
        fallbacks++;
        return tokenizer.Encode(response, addBos: false);
    }

    static int[] Checked(int[] ids, int vocabSize, string where, string field)
    {
        foreach (int id in ids)
            if (id < 0 || id >= vocabSize)
                throw new PargsException(
                    $"{where}: field '{field}': the tokenizer produced id {id}, outside the vocabulary of size {vocabSize} " +
                    $"(expected 0 ≤ id < {vocabSize}; are the tokenizer and the model from the same checkpoint?).");
        return ids;
    }
}
