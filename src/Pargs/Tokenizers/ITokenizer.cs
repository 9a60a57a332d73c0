namespace Pargs.Tokenizers;

/// <summary>
/// What every tokenizer gives Pargs: text to ids, ids to text, and the raw bytes of each token (which is
/// what streaming decoding and LM↔RM vocabulary bridging need, since a token may end mid-character).
/// </summary>
public interface ITokenizer
{
    int VocabSize { get; }
    int? BosId { get; }
    int? EosId { get; }

    /// <summary>
    /// Ids for <paramref name="text"/>. <paramref name="addBos"/> adds the tokenizer's special tokens: BOS for
    /// SentencePiece vocabularies and Llama-style tokenizer.json files, whatever the post-processor adds for
    /// others (nothing for Qwen3, [CLS] … [SEP] for BERT, a trailing &lt;/s&gt; for T5).
    /// </summary>
    int[] Encode(string text, bool addBos = false);

    /// <summary>Text for <paramref name="ids"/>; special tokens (BOS/EOS/…) are left out when <paramref name="skipSpecial"/>.</summary>
    string Decode(IEnumerable<int> ids, bool skipSpecial = true);

    /// <summary>The UTF-8 bytes token <paramref name="id"/> stands for (empty for special tokens).</summary>
    byte[] TokenBytes(int id);

    /// <summary>True for control tokens such as BOS, EOS, PAD.</summary>
    bool IsSpecial(int id);

    /// <summary>Writes a Hugging Face <c>tokenizer.json</c> that loads back to the same ids.</summary>
    void SaveTokenizerJson(string path);
}
