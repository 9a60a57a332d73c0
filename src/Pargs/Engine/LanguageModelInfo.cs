using Pargs.Tokenizers;

namespace Pargs.Engine;

/// <summary>
/// What decoding needs to know about a language model besides its next-token distributions: where it comes
/// from (for messages), its tokenizer, vocabulary, context and end-of-sequence ids. A local model and a
/// model behind a server both describe themselves this way.
/// </summary>
public sealed record LanguageModelInfo(string Source, ITokenizer? Tokenizer, int VocabSize, int MaxPositions, int? EosTokenId)
{
    /// <summary>The EOS id generation stops at: the config's, else the tokenizer's.</summary>
    public int? StopId => EosTokenId ?? Tokenizer?.EosId;
}
