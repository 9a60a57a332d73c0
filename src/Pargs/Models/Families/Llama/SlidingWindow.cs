using static TorchSharp.torch;

namespace Pargs.Models.Families.Llama;

/// <summary>
/// Mistral's sliding-window attention as transformers masks it: a query at position p sees keys at positions
/// greater than p − window (itself and the window − 1 before it), on top of the causal/padding mask.
/// </summary>
internal static class SlidingWindow
{
    /// <summary>
    /// <paramref name="mask"/> [B, 1, T, S] further restricted to the window. Key positions: a committed cache slot
    /// holds the row's n-th real token at position n (positions count real tokens only); the T new slots after
    /// the cache hold the queries' own tokens (siblings and packed segments included). Unchanged (the same tensor)
    /// while every query is within the first <paramref name="window"/> positions.
    /// </summary>
    public static Tensor Restrict(Tensor mask, Tensor positions, KvCache? cache, int window)
    {
        long b = positions.shape[0], t = positions.shape[1], s = mask.shape[3];
        var queryPositions = positions.contiguous().data<long>().ToArray();
        if (queryPositions.Max() < window) return mask;
        int committed = (int)(s - t);
        var keyPositions = new long[b * s];
        for (int row = 0; row < b; row++)
        {
            long next = 0;
            for (int slot = 0; slot < committed; slot++)
                keyPositions[row * s + slot] = cache!.ValidSlots[row * cache.Capacity + slot] ? next++ : long.MinValue / 2;
            for (int j = 0; j < t; j++) keyPositions[row * s + committed + j] = queryPositions[row * t + j];
        }
        var inWindow = new bool[b * t * s];
        for (int row = 0; row < b; row++)
            for (int j = 0; j < t; j++)
            {
                long query = queryPositions[row * t + j];
                for (int slot = 0; slot < s; slot++)
                    inWindow[(row * t + j) * s + slot] = keyPositions[row * s + slot] > query - window;
            }
        return mask.logical_and(tensor(inWindow).view(b, 1, t, s));
    }
}
