using Pargs.Data;
using static TorchSharp.torch;

namespace Pargs.Rewards;

/// <summary>
/// Several preference pairs as one right-padded batch of 2B rows (rows 0..B−1 chosen, B..2B−1 rejected; both
/// sides of a pair have the same length because responses are EOS-padded to a common L), plus the flat index of
/// every compared prefix. Prefix i of a response ends at position |prompt| + i − 1, so one causal forward over
/// the 2B rows yields the rewards of all prefix pairs at once.
/// </summary>
public sealed class RewardPairBatch
{
    RewardPairBatch(Tensor ids, Tensor valid, Tensor chosenIndex, Tensor rejectedIndex, Tensor margins, Tensor prefixLengths, Tensor responseLengths)
    {
        Ids = ids; Valid = valid; ChosenIndex = chosenIndex; RejectedIndex = rejectedIndex;
        Margins = margins; PrefixLengths = prefixLengths; ResponseLengths = responseLengths;
    }

    /// <summary>[2B, T] token ids (right padding = 0).</summary>
    public Tensor Ids { get; }
    /// <summary>[2B, T] true at real tokens.</summary>
    public Tensor Valid { get; }
    /// <summary>[N] flat indices into the [2B·T] prefix rewards: the chosen prefix of each compared pair.</summary>
    public Tensor ChosenIndex { get; }
    /// <summary>[N] the rejected prefix of the same comparison.</summary>
    public Tensor RejectedIndex { get; }
    /// <summary>[N] the pair's margin (0 when it has none), repeated for each of its prefixes.</summary>
    public Tensor Margins { get; }
    /// <summary>[N] i of each comparison.</summary>
    public Tensor PrefixLengths { get; }
    /// <summary>[N] L of each comparison's pair.</summary>
    public Tensor ResponseLengths { get; }

    /// <summary>
    /// <paramref name="prefixes"/> picks the prefix lengths compared for each pair: the pair's own
    /// <see cref="TokenizedPair.PrefixLengths"/> (partial training), only L (full training), or every 1..L (evaluation).
    /// </summary>
    public static RewardPairBatch Build(IReadOnlyList<TokenizedPair> pairs, Func<TokenizedPair, IEnumerable<int>> prefixes)
    {
        int b = pairs.Count;
        int t = pairs.Max(p => p.SequenceLength);
        var ids = new long[2 * b * t];
        var valid = new bool[2 * b * t];
        var chosen = new List<long>();
        var rejected = new List<long>();
        var margins = new List<float>();
        var prefixLengths = new List<long>();
        var responseLengths = new List<long>();
        for (int row = 0; row < b; row++)
        {
            var pair = pairs[row];
            if (pair.ChosenIds.Length != pair.RejectedIds.Length)
                throw new ArgumentException($"pair {row}: chosen ({pair.ChosenIds.Length}) and rejected ({pair.RejectedIds.Length}) responses must be padded to the same length");
            Fill(ids, valid, row * t, pair.ChosenSequence);
            Fill(ids, valid, (b + row) * t, pair.RejectedSequence);
            foreach (int i in prefixes(pair))
            {
                if (i < 1 || i > pair.ResponseLength)
                    throw new ArgumentException($"pair {row}: prefix length {i} is outside 1..{pair.ResponseLength}");
                long position = pair.PromptIds.Length + i - 1;
                chosen.Add(row * t + position);
                rejected.Add((b + row) * t + position);
                margins.Add((float)(pair.Margin ?? 0.0));
                prefixLengths.Add(i);
                responseLengths.Add(pair.ResponseLength);
            }
        }
        return new RewardPairBatch(tensor(ids, 2L * b, t), tensor(valid, 2L * b, t), tensor(chosen.ToArray()), tensor(rejected.ToArray()),
            tensor(margins.ToArray()), tensor(prefixLengths.ToArray()), tensor(responseLengths.ToArray()));
    }

    static void Fill(long[] ids, bool[] valid, int offset, int[] sequence)
    {
        for (int j = 0; j < sequence.Length; j++)
        {
            ids[offset + j] = sequence[j];
            valid[offset + j] = true;
        }
    }

    /// <summary>Rewards of the compared prefixes, (chosen [N], rejected [N]), from one forward of <paramref name="model"/>.</summary>
    public (Tensor Chosen, Tensor Rejected) Rewards(RewardModel model)
    {
        var all = model.PrefixRewards(Ids, Valid).reshape(-1);
        return (all.index_select(0, ChosenIndex), all.index_select(0, RejectedIndex));
    }
}
