using static TorchSharp.torch;

namespace Pargs.Models;

/// <summary>
/// Boolean attention masks [B, 1, T, S] (true = may attend) for the three ways Pargs runs a transformer.
/// Every query may always attend to itself, so a padding row never sees an all-false row (which would
/// make softmax produce NaN); its output is ignored anyway.
/// </summary>
public static class AttentionMasks
{
    /// <summary>
    /// Causal attention over new tokens [B, T] that follow a committed prefix [B, L] (L may be 0):
    /// query t sees valid prefix slots and valid new tokens at or before t.
    /// </summary>
    public static Tensor Causal(Tensor? validPrefix, Tensor validNew)
    {
        long b = validNew.shape[0], t = validNew.shape[1];
        // One new token (a decoding step) always sees itself: skip building the [T, T] triangle.
        if (t == 1)
        {
            var self = ones(b, 1, 1, dtype: ScalarType.Bool);
            if (validPrefix is null || validPrefix.shape[1] == 0) return self.unsqueeze(1);
            return cat(new[] { validPrefix.unsqueeze(1), self }, 2).unsqueeze(1);
        }
        var causal = ones(t, t, dtype: ScalarType.Bool).tril();                  // [T, T]
        var newPart = causal.unsqueeze(0) & validNew.unsqueeze(1);             // [B, T, T]
        newPart = newPart | eye(t, dtype: ScalarType.Bool).unsqueeze(0);
        if (validPrefix is null || validPrefix.shape[1] == 0) return newPart.unsqueeze(1);
        var prefixPart = validPrefix.unsqueeze(1).expand(b, t, validPrefix.shape[1]);
        return cat(new[] { prefixPart, newPart }, 2).unsqueeze(1);
    }

    /// <summary>
    /// k sibling candidates appended to a prefix [B, L]: each sees the valid prefix and itself, not its
    /// siblings — so one forward scores k one-token extensions of the same prefix.
    /// </summary>
    public static Tensor Siblings(Tensor validPrefix, int k)
    {
        long b = validPrefix.shape[0];
        var prefixPart = validPrefix.unsqueeze(1).expand(b, k, validPrefix.shape[1]);
        var self = eye(k, dtype: ScalarType.Bool).unsqueeze(0).expand(b, k, k);
        return cat(new[] { prefixPart, self }, 2).unsqueeze(1);
    }

    /// <summary>Position of each token = count of valid tokens before it in its row (left padding gets 0).</summary>
    public static Tensor Positions(Tensor? validPrefix, Tensor validNew)
    {
        var offset = validPrefix is null ? zeros(validNew.shape[0], 1, dtype: ScalarType.Int64)
                                         : validPrefix.to(ScalarType.Int64).sum(1, keepdim: true);
        var positions = validNew.to(ScalarType.Int64).cumsum(1) - 1 + offset;
        return positions.clamp_min(0);
    }
}
