using System.Text;
using System.Text.Json;
using Pargs.Data;
using Pargs.Tokenizers;

namespace Pargs.Experiments;

/// <summary>
/// The pipelines' pair files: TRL explicit JSONL (<c>{"prompt","chosen","rejected"}</c>) whose prompt is already
/// rendered, so every later stage reads it with the plain template and sees exactly the text the data stage chose.
/// </summary>
public static class PairFiles
{
    public static void Write(string path, IEnumerable<PreferencePair> pairs)
    {
        var json = new JsonSerializerOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
        Pargs.IO.AtomicFile.WriteText(path, writer =>
        {
            foreach (var p in pairs)
            {
                var row = new Dictionary<string, object> { ["prompt"] = p.Prompt, ["chosen"] = p.Chosen, ["rejected"] = p.Rejected };
                if (p.Margin is { } margin) row["margin"] = margin;
                writer.Write(JsonSerializer.Serialize(row, json));
                writer.Write('\n');
            }
        });
    }

    /// <summary>
    /// A pair file as token ids: every prefix listed (partial training and prefix evaluation), or only the whole
    /// responses (<paramref name="finalOnly"/>: full-RM training, DPO). Pairs longer than <paramref name="maxLength"/> are dropped.
    /// </summary>
    public static IReadOnlyList<TokenizedPair> Tokenize(string path, ITokenizer tokenizer, int maxLength, bool finalOnly)
    {
        var read = PreferenceReader.Read(path);
        var options = new PairTokenizerOptions
        {
            MaxLength = maxLength,
            PartialPairs = finalOnly ? new PartialPairOptions { Positions = new PrefixPositions.FinalOnly() } : new PartialPairOptions(),
        };
        var pairs = new PairTokenizer(tokenizer, options).Tokenize(read.Pairs, path).Pairs;
        if (pairs.Count == 0) throw new PargsException($"{path}: no usable preference pairs of at most {maxLength} tokens");
        return pairs;
    }
}
