using Pargs.Benchmarks;
using Pargs.Models;

namespace Pargs.Tests.Benchmarks;

public class DecodeWorkTests
{
    [Fact]
    public void Counts_a_tiny_shape_by_hand()
    {
        // hidden 4, 2 heads of 2, 1 kv head (kv width 2), MLP 6, 1 layer, vocab 10.
        // Layer weights: q 4·4 + k,v 2·(4·2) + o 4·4 + MLP 3·4·6 = 16 + 16 + 16 + 72 = 120; LM head 4·10 = 40.
        // A token attending to n slots: 120 + 2 (q·k, p·v) · 2 heads · n · 2 dims = 120 + 8n.
        var c = new ModelConfig { VocabSize = 10, HiddenSize = 4, IntermediateSize = 6, NumLayers = 1, NumHeads = 2, NumKvHeads = 1 };
        Assert.Equal(120, DecodeWork.BackboneWeights(c));

        // Top-k, prompt 2, 2 new tokens: prefill (128 + 136) + head 40, then one step attending to 3 slots
        // (144) + head 40 = 488 multiply-adds; the LM's 160 weights are read twice. Per token: 244 and 2·640/2.
        var topK = DecodeWork.TopK(c, promptLength: 2, newTokens: 2);
        Assert.Equal(244, topK.MultiplyAdds, 9);
        Assert.Equal(640, topK.WeightBytes, 9);

        // PARGS with k = 3 adds the RM's prefill (264) and, per step, 3 candidates each attending to the prefix
        // and itself plus the 4-weight score head: 3·(144 + 4) + 3·(152 + 4) = 912. (264 + 912) / 2 = 588 per token.
        // RM weights: 120 for the prefill, 124 per step: 4·(120 + 2·124) / 2 = 736 bytes per token.
        var pargs = DecodeWork.Guided(c, promptLength: 2, newTokens: 2, k: 3);
        Assert.Equal(244 + 588, pargs.MultiplyAdds, 9);
        Assert.Equal(640 + 736, pargs.WeightBytes, 9);
    }
}
