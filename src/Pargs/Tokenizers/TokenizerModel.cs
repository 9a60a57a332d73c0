namespace Pargs.Tokenizers;

/// <summary>A tokenizer.json model (BPE, WordPiece, Unigram): one pre-tokenized piece → ids, and its vocabulary.</summary>
internal abstract class TokenizerModel
{
    /// <summary>Ids are 0 .. Size-1 (gaps allowed).</summary>
    public abstract int Size { get; }

    public abstract void Tokenize(string word, List<int> ids);

    public abstract string? IdToToken(int id);

    public abstract bool TryGetId(string token, out int id);
}
