using Pargs.Decoding;
using Pargs.Engine;
using Pargs.Tests.Models;
using Pargs.Tests.Tokenizers;
using Pargs.Tokenizers;

namespace Pargs.Tests.Decoding;

/// <summary>
/// Whether an LM and a reward model share token ids: every token's bytes compared once per pair of tokenizers, the
/// answer kept for that pair (every decoding run opens its scorer through this check).
/// </summary>
public class VocabularyBridgeTests
{
    static ITokenizer Stories260K() => SentencePieceTokenizer.LoadLlama2c(TokenizerTestData.Stories260K("tok512.bin"));

    static LanguageModelInfo Lm(ITokenizer tokenizer) => new("lm", tokenizer, tokenizer.VocabSize, 128, null);

    static Pargs.Rewards.RewardModel Rm(ITokenizer tokenizer)
    {
        var rm = TinyModels.RandomRM(TinyModels.LlamaConfig(tokenizer.VocabSize), seed: 3);
        rm.Tokenizer = tokenizer;
        return rm;
    }

    [Fact]
    public void The_answer_is_kept_per_pair_of_tokenizers_and_is_that_of_the_comparison()
    {
        var lmTokenizer = new CountingTokenizer(Stories260K());
        var sameBytes = new CountingTokenizer(Stories260K()); // another instance, the same vocabulary
        var oneTokenDiffers = new CountingTokenizer(Stories260K(), changedId: 300);
        using var same = Rm(sameBytes);
        using var differs = Rm(oneTokenDiffers);

        Assert.True(VocabularyBridge.SharesVocabulary(Lm(lmTokenizer), same));
        Assert.True(lmTokenizer.BytesRead >= 512 && sameBytes.BytesRead >= 512); // compared token by token
        Assert.False(VocabularyBridge.SharesVocabulary(Lm(lmTokenizer), differs)); // not the LM tokenizer's first answer
        Assert.True(oneTokenDiffers.BytesRead > 300);

        int before = lmTokenizer.BytesRead + sameBytes.BytesRead + oneTokenDiffers.BytesRead;
        for (int i = 0; i < 3; i++)
        {
            Assert.True(VocabularyBridge.SharesVocabulary(Lm(lmTokenizer), same));
            Assert.False(VocabularyBridge.SharesVocabulary(Lm(lmTokenizer), differs));
        }
        Assert.Equal(before, lmTokenizer.BytesRead + sameBytes.BytesRead + oneTokenDiffers.BytesRead); // answered from the kept pairs

        // The same tokenizer on both sides shares its vocabulary without a comparison.
        int own = lmTokenizer.BytesRead;
        using var sameInstance = Rm(lmTokenizer);
        Assert.True(VocabularyBridge.SharesVocabulary(Lm(lmTokenizer), sameInstance));
        Assert.Equal(own, lmTokenizer.BytesRead);
    }

    /// <summary>A tokenizer that counts the token bytes read from it; <paramref name="changedId"/> stands for other bytes.</summary>
    sealed class CountingTokenizer(ITokenizer inner, int changedId = -1) : ITokenizer
    {
        public int BytesRead { get; private set; }
        public int VocabSize => inner.VocabSize;
        public int? BosId => inner.BosId;
        public int? EosId => inner.EosId;
        public int[] Encode(string text, bool addBos = false) => inner.Encode(text, addBos);
        public string Decode(IEnumerable<int> ids, bool skipSpecial = true) => inner.Decode(ids, skipSpecial);
        public bool IsSpecial(int id) => inner.IsSpecial(id);
        public void SaveTokenizerJson(string path) => inner.SaveTokenizerJson(path);

        public byte[] TokenBytes(int id)
        {
            BytesRead++;
            return id == changedId ? [.. inner.TokenBytes(id), (byte)'!'] : inner.TokenBytes(id);
        }
    }
}
