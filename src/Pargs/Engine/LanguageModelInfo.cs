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

    /// <summary>
    /// Further ids that end a sequence: the rest of config.json's / generation_config.json's <c>eos_token_id</c>
    /// lists (Llama-3 instruct: <c>&lt;|end_of_text|&gt;</c> and <c>&lt;|eot_id|&gt;</c>), as transformers' generate() stops on any.
    /// </summary>
    public IReadOnlyList<int> MoreStopIds { get; init; } = [];

    /// <summary>The row context of a generation run on this model: stops at every EOS id it has.</summary>
    public Decoding.DecodingContext RowContext(ITokenizer tokenizer, bool stopAtEos, IReadOnlyList<string> stopStrings, int maxNewTokens)
        => new(tokenizer, StopId, stopAtEos, stopStrings, maxNewTokens) { MoreEosIds = MoreStopIds.Where(id => id != StopId).ToArray() };
}
