using Pargs.Models;
using Pargs.Rewards;

namespace Pargs.Decoding;

/// <summary>
/// LM and reward model must agree on token ids for candidates to pass straight through (the cached hot
/// path). They agree when both vocabularies have the same size and every token stands for the same bytes.
/// </summary>
public static class VocabularyBridge
{
    public static void RequireSameVocabulary(CausalLM lm, IRewardModel rm)
    {
        int lmVocab = lm.Config.VocabSize, rmVocab = rm.Backbone.Config.VocabSize;
        if (lmVocab != rmVocab)
            throw new PargsException($"the reward model's vocabulary ({rmVocab} tokens) differs from the LM's ({lmVocab}): its tokenizer cannot represent the LM's token ids; use a reward model built on the LM's tokenizer (e.g. initialised from the same base model)");
        if (lm.Tokenizer is { } a && rm.Tokenizer is { } b)
        {
            for (int id = 0; id < lmVocab; id++)
                if (!a.TokenBytes(id).AsSpan().SequenceEqual(b.TokenBytes(id)))
                    throw new PargsException($"the reward model's tokenizer maps token {id} to different text than the LM's; use a reward model built on the LM's tokenizer");
        }
    }
}
