using System.Text;
using Pargs.Models;
using Pargs.Rewards;
using Pargs.Tokenizers;

namespace Pargs.Decoding;

/// <summary>
/// Maps a sequence of LM token ids to the reward model's token ids through text, for an LM and RM with
/// different tokenizers. The RM reads exactly what a person reading the LM's output would see:
/// <list type="bullet">
/// <item>the LM tokens' raw bytes are joined (special tokens add none; a SentencePiece LM's dummy-prefix
/// space is dropped, as its Decode does);</item>
/// <item>only <b>complete</b> UTF-8 characters are read: a byte-level piece that starts a multi-byte character
/// is held back until the character completes (invalid bytes become U+FFFD, as in Decode);</item>
/// <item>the text is encoded the way the RM saw text in training: its BOS first when its tokenizer has one;</item>
/// <item>when the last LM token is the LM's EOS, the RM's EOS is appended (if its tokenizer has one; otherwise
/// the text is scored unchanged). An EOS earlier in the sequence is just an empty piece of text.</item>
/// </list>
/// A reward model whose tokenizer cannot write the text back (encode → decode differs, e.g. &lt;unk&gt; for a
/// character it lacks) is a <see cref="PargsException"/> naming the model and the text.
/// </summary>
public sealed class RewardRetokenizer
{
    readonly ITokenizer lmTokenizer, rmTokenizer;
    readonly int? lmEos;
    readonly bool stripDummyPrefix;
    readonly string rmName;

    public RewardRetokenizer(ITokenizer lmTokenizer, int? lmEos, ITokenizer rmTokenizer, string rmName, int rmContext)
    {
        this.lmTokenizer = lmTokenizer;
        this.rmTokenizer = rmTokenizer;
        this.lmEos = lmEos;
        this.rmName = rmName;
        RmContext = rmContext;
        stripDummyPrefix = lmTokenizer is IAddsDummyPrefix { AddsDummyPrefix: true };
    }

    public int? RmEos => rmTokenizer.EosId;
    /// <summary>The reward model's max_position_embeddings.</summary>
    public int RmContext { get; }

    public bool IsLmEos(long lmId) => lmEos == lmId;

    /// <summary>
    /// The bytes LM token <paramref name="lmId"/> adds after a text that has (<paramref name="started"/>) or has
    /// not yet had a non-empty token; the dummy-prefix space of the first one is dropped.
    /// </summary>
    public byte[] BytesOf(long lmId, bool started)
    {
        if (lmId < 0 || lmId >= lmTokenizer.VocabSize || lmTokenizer.IsSpecial((int)lmId)) return [];
        var bytes = lmTokenizer.TokenBytes((int)lmId);
        return !started && stripDummyPrefix && bytes.Length > 0 && bytes[0] == (byte)' ' ? bytes[1..] : bytes;
    }

    /// <summary>All bytes of an LM id sequence, as <see cref="BytesOf"/> adds them one by one.</summary>
    public List<byte> BytesOf(IEnumerable<int> lmIds, out bool started)
    {
        var bytes = new List<byte>();
        started = false;
        foreach (var id in lmIds)
        {
            bytes.AddRange(BytesOf(id, started));
            started |= Starts(id);
        }
        return bytes;
    }

    /// <summary>True when the token has bytes of its own (so the dummy prefix no longer applies after it).</summary>
    public bool Starts(long lmId) => lmId >= 0 && lmId < lmTokenizer.VocabSize && !lmTokenizer.IsSpecial((int)lmId) && lmTokenizer.TokenBytes((int)lmId).Length > 0;

    /// <summary>The complete characters of <paramref name="bytes"/>: a trailing unfinished UTF-8 sequence is held back.</summary>
    public static string CompleteText(ReadOnlySpan<byte> bytes)
    {
        var decoder = Encoding.UTF8.GetDecoder();
        var chars = new char[decoder.GetCharCount(bytes, flush: false)];
        int n = decoder.GetChars(bytes, chars, flush: false);
        return new string(chars, 0, n);
    }

    /// <summary>RM ids of <paramref name="text"/> (BOS first when the RM tokenizer has one), checked to read back as the text.</summary>
    public int[] Encode(string text)
    {
        int[] ids;
        try
        {
            ids = rmTokenizer.Encode(text, addBos: true);
        }
        catch (PargsException e)
        {
            throw new PargsException($"{rmName}: the reward model's tokenizer cannot represent the LM's text \"{Snippet(text, 0)}\": {e.Message}");
        }
        var back = rmTokenizer.Decode(ids);
        if (back != text && back != text.Normalize(NormalizationForm.FormC))
        {
            int at = 0;
            while (at < text.Length && at < back.Length && text[at] == back[at]) at++;
            throw new PargsException(
                $"{rmName}: the reward model's tokenizer cannot represent the LM's text \"{Snippet(text, at)}\" (it reads back as " +
                $"\"{Snippet(back, at)}\", e.g. <unk> for a character missing from its vocabulary); use a reward model whose tokenizer " +
                "covers every character the LM can write (byte fallback or byte-level BPE), or one built on the LM's tokenizer");
        }
        return CheckContext(ids);
    }

    /// <summary>The ids, if they fit the reward model's context.</summary>
    public int[] CheckContext(int[] ids) => ids.Length <= RmContext ? ids
        : throw new PargsException($"{rmName}: the text needs {ids.Length} reward-model tokens but its context is {RmContext} (max_position_embeddings); shorten the prompt or max_new_tokens");

    static string Snippet(string s, int at)
    {
        int from = Math.Max(0, at - 30), to = Math.Min(s.Length, at + 30);
        return (from > 0 ? "…" : "") + s[from..to] + (to < s.Length ? "…" : "");
    }

    /// <summary>
    /// The reward model's ids for a whole LM sequence, computed from scratch (the naive oracle and Best-of-N):
    /// BOS + encode(complete text) + RM EOS when the last LM token is the LM's EOS.
    /// </summary>
    public int[] RewardIds(IReadOnlyList<int> lmIds)
    {
        var ids = Encode(CompleteText(BytesOf(lmIds, out _).ToArray()));
        return lmIds.Count > 0 && IsLmEos(lmIds[^1]) && RmEos is int eos ? CheckContext([.. ids, eos]) : ids;
    }

    /// <summary>
    /// The bridge between <paramref name="lm"/> and <paramref name="rm"/>, or null when they share a vocabulary
    /// (ids pass straight through). Both tokenizers are needed to bridge.
    /// </summary>
    public static RewardRetokenizer? For(Engine.LanguageModelInfo lm, IRewardModel rm)
    {
        if (VocabularyBridge.SharesVocabulary(lm, rm)) return null;
        string name = rm.Source;
        if (lm.Tokenizer is null || rm.Tokenizer is null)
            throw new PargsException(
                $"{name}: the reward model's vocabulary ({rm.Config.VocabSize} tokens) differs from the LM's ({lm.VocabSize}) " +
                $"and {(lm.Tokenizer is null ? "the LM" : "the reward model")} has no tokenizer to translate between them through text; " +
                "give the reward model its tokenizer (tokenizer.json) or use one built on the LM's tokenizer");
        return new RewardRetokenizer(lm.Tokenizer, lm.StopId, rm.Tokenizer, name, rm.Config.MaxPositions);
    }
}
