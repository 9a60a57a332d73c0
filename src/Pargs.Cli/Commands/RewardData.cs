using Pargs.Data;
using Pargs.Tokenizers;

namespace Pargs.Cli.Commands;

/// <summary>Reads a preference file and tokenizes it into partial pairs for train-rm and eval-rm.</summary>
static class RewardData
{
    public static IReadOnlyList<TokenizedPair> Load(string path, ITokenizer tokenizer, string template, int maxLength, bool finalOnly, BadRowPolicy onBadRow = BadRowPolicy.Fail)
    {
        var read = PreferenceReader.Read(path, new PreferenceReadOptions
        {
            Template = PromptTemplate.FromName(template, "--template"),
            OnBadRow = onBadRow,
        });
        var options = new PairTokenizerOptions
        {
            MaxLength = maxLength,
            PartialPairs = finalOnly ? new PartialPairOptions { Positions = new PrefixPositions.FinalOnly() } : new PartialPairOptions(),
        };
        var tokenized = new PairTokenizer(tokenizer, options).Tokenize(read.Pairs, path);
        var report = tokenized.Report;
        CliErrors.Info($"{path}: {read.Report.RowsKept} pairs read ({read.Report.RowsSkipped} skipped), {report.PairsKept} kept " +
                       $"({report.FilteredTooLong} longer than {maxLength} tokens, {report.FilteredTooShort} too short)");
        if (tokenized.Pairs.Count == 0) throw new PargsException($"{path}: no usable preference pairs");
        return tokenized.Pairs;
    }
}
