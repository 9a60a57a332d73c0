using static TorchSharp.torch;

namespace Pargs.Models;

/// <summary>Token sequences of different lengths as one right-padded batch: ids [B, T] and valid [B, T].</summary>
public static class PaddedBatch
{
    public static (Tensor Ids, Tensor Valid) RightPadded(IReadOnlyList<int[]> sequences, int padId = 0)
    {
        int longest = sequences.Max(s => s.Length);
        var ids = new long[sequences.Count * longest];
        var valid = new bool[sequences.Count * longest];
        for (int b = 0; b < sequences.Count; b++)
        {
            Array.Fill(ids, padId, b * longest, longest);
            for (int t = 0; t < sequences[b].Length; t++)
            {
                ids[b * longest + t] = sequences[b][t];
                valid[b * longest + t] = true;
            }
        }
        return (tensor(ids, sequences.Count, longest), tensor(valid, sequences.Count, longest));
    }
}
