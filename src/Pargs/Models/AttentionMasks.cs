using static TorchSharp.torch;

namespace Pargs.Models;

/// <summary>
/// Boolean attention masks [B, 1, T, S] (true = may attend) and token positions [B, T] for the three ways Pargs
/// runs a transformer. Every query may always attend to itself, so a padding row never sees an all-false row
/// (which would make softmax produce NaN); its output is ignored anyway.
/// <para>
/// Built on the host from bool arrays and handed to torch as one tensor each. WHY: a decoding step needs a
/// mask and positions for every model it runs; built from tensor ops they were ~15 TorchSharp calls per step
/// and model, which cost more than the stories260K forward itself.
/// </para>
/// </summary>
public static class AttentionMasks
{
    /// <summary>
    /// Causal attention over new tokens (<paramref name="validNew"/> [B, T]) that follow a committed prefix of
    /// <paramref name="prefixLength"/> slots (row b's slot s valid = <paramref name="validPrefix"/>[b·stride + s];
    /// null or length 0 = no prefix): query t sees valid prefix slots and valid new tokens at or before t.
    /// </summary>
    public static Tensor Causal(bool[]? validPrefix, int prefixStride, int prefixLength, bool[] validNew, int batch, int t)
        => tensor(CausalHost(validPrefix, prefixStride, prefixLength, validNew, batch, t), new long[] { batch, 1, t, prefixLength + t });

    /// <summary>
    /// <see cref="Causal(bool[], int, int, bool[], int, int)"/>'s mask as a host array [B · T · S] row-major (S = prefix + T):
    /// what the torch-free session (<see cref="Engine.HostSession"/>) hands its kernel, and what the tensor version wraps.
    /// </summary>
    public static bool[] CausalHost(bool[]? validPrefix, int prefixStride, int prefixLength, bool[] validNew, int batch, int t)
    {
        int s = prefixLength + t;
        var mask = new bool[(long)batch * t * s];
        for (int b = 0; b < batch; b++)
            for (int i = 0; i < t; i++)
            {
                long row = ((long)b * t + i) * s;
                if (prefixLength > 0) Array.Copy(validPrefix!, (long)b * prefixStride, mask, row, prefixLength);
                for (int j = 0; j <= i; j++) mask[row + prefixLength + j] = validNew[b * t + j];
                mask[row + prefixLength + i] = true;
            }
        return mask;
    }

    /// <summary><see cref="Causal(bool[], int, int, bool[], int, int)"/> for tensors (null prefix = none).</summary>
    public static Tensor Causal(Tensor? validPrefix, Tensor validNew)
    {
        int batch = (int)validNew.shape[0], t = (int)validNew.shape[1];
        int length = validPrefix is null ? 0 : (int)validPrefix.shape[1];
        return Causal(validPrefix is null ? null : Host(validPrefix), length, length, Host(validNew), batch, t);
    }

    /// <summary>
    /// k sibling candidates appended to a prefix of <paramref name="prefixLength"/> slots: each sees the valid
    /// prefix and itself, not its siblings — so one forward scores k one-token extensions of the same prefix.
    /// </summary>
    public static Tensor Siblings(bool[] validPrefix, int prefixStride, int prefixLength, int batch, int k)
    {
        int s = prefixLength + k;
        var mask = new bool[(long)batch * k * s];
        for (int b = 0; b < batch; b++)
            for (int i = 0; i < k; i++)
            {
                long row = ((long)b * k + i) * s;
                Array.Copy(validPrefix, (long)b * prefixStride, mask, row, prefixLength);
                mask[row + prefixLength + i] = true;
            }
        return tensor(mask, new long[] { batch, 1, k, s });
    }

    /// <summary>
    /// Position of each new token = count of valid tokens before it in its row (<paramref name="committed"/>[b]
    /// committed ones, null = none, plus the valid new ones before it); padding gets 0.
    /// </summary>
    public static long[] Positions(long[]? committed, bool[] validNew, int batch, int t)
    {
        var positions = new long[batch * t];
        for (int b = 0; b < batch; b++)
        {
            long next = committed?[b] ?? 0;
            for (int i = 0; i < t; i++)
            {
                if (!validNew[b * t + i]) continue; // padding: position 0
                positions[b * t + i] = next++;
            }
        }
        return positions;
    }

    /// <summary><see cref="Positions(long[], bool[], int, int)"/> for tensors: [B, T] int64.</summary>
    public static Tensor Positions(Tensor? validPrefix, Tensor validNew)
    {
        int batch = (int)validNew.shape[0], t = (int)validNew.shape[1];
        long[]? committed = null;
        if (validPrefix is not null)
        {
            var prefix = Host(validPrefix);
            int length = (int)validPrefix.shape[1];
            committed = Enumerable.Range(0, batch).Select(b => (long)prefix.AsSpan(b * length, length).Count(true)).ToArray();
        }
        return tensor(Positions(committed, Host(validNew), batch, t), batch, t);
    }

    /// <summary>A [B, T] validity tensor as a row-major host array.</summary>
    internal static bool[] Host(Tensor valid) => valid.to(ScalarType.Bool).contiguous().data<bool>().ToArray();
}
