using Pargs.Data;

namespace Pargs.Tests.Data;

public class PartialPairsTests
{
    const int Eos = 99;
    static readonly int[] Prompt = [1, 2, 3];

    [Fact]
    public void Shorter_response_is_padded_with_eos_and_every_prefix_is_a_pair()
    {
        var pair = PartialPairs.Build(Prompt, [10, 11, 12, 13, 14], [20, 21], Eos, margin: 0.5);
        Assert.Equal([10, 11, 12, 13, 14], pair.ChosenIds);
        Assert.Equal([20, 21, Eos, Eos, Eos], pair.RejectedIds);
        Assert.Equal([1, 2, 3, 4, 5], pair.PrefixLengths);
        Assert.Equal((5, 2, 5, 8), (pair.ChosenLength, pair.RejectedLength, pair.ResponseLength, pair.SequenceLength));
        Assert.Equal(0.5, pair.Margin);

        var swapped = PartialPairs.Build(Prompt, [20, 21], [10, 11, 12], Eos);
        Assert.Equal([20, 21, Eos], swapped.ChosenIds);
        Assert.Equal([10, 11, 12], swapped.RejectedIds);
    }

    [Fact]
    public void Materialized_prefixes_are_prompt_plus_first_i_tokens_of_each_side()
    {
        var pair = PartialPairs.Build(Prompt, [10, 11, 12], [20], Eos,
            new PartialPairOptions { Positions = new PrefixPositions.Stride(2) });
        var prefixes = pair.MaterializePrefixes();
        Assert.Equal([2, 3], prefixes.Select(p => p.PrefixLength));
        Assert.Equal([1, 2, 3, 10, 11], prefixes[0].WinnerIds);
        Assert.Equal([1, 2, 3, 20, Eos], prefixes[0].LoserIds);
        Assert.Equal(pair.ChosenSequence, prefixes[^1].WinnerIds);
        Assert.Equal(pair.RejectedSequence, prefixes[^1].LoserIds);
        // Every prefix is a prefix of the one full sequence the reward model runs forward once.
        Assert.All(prefixes, p =>
        {
            Assert.Equal(Prompt.Length + p.PrefixLength, p.WinnerIds.Length);
            Assert.Equal(pair.ChosenSequence[..p.WinnerIds.Length], p.WinnerIds);
            Assert.Equal(pair.RejectedSequence[..p.LoserIds.Length], p.LoserIds);
        });
    }

    [Theory]
    [InlineData(10, 4, 1, new[] { 4, 8, 10 })]
    [InlineData(8, 4, 1, new[] { 4, 8 })]
    [InlineData(10, 3, 5, new[] { 6, 9, 10 })]
    [InlineData(2, 5, 1, new[] { 2 })]
    public void Stride_keeps_multiples_and_always_the_final_position(int length, int every, int min, int[] expected)
    {
        var options = new PartialPairOptions { Positions = new PrefixPositions.Stride(every), MinPrefixLength = min };
        Assert.Equal(expected, PartialPairs.SelectPrefixLengths(length, options, pairIndex: 0));
    }

    [Fact]
    public void Min_prefix_length_drops_short_prefixes_and_can_leave_none()
    {
        var options = new PartialPairOptions { MinPrefixLength = 3 };
        Assert.Equal([3, 4, 5], PartialPairs.SelectPrefixLengths(5, options, 0));
        Assert.Empty(PartialPairs.SelectPrefixLengths(2, options, 0));
        Assert.Equal([5], PartialPairs.SelectPrefixLengths(5, new PartialPairOptions { Positions = new PrefixPositions.FinalOnly() }, 0));
    }

    [Fact]
    public void Random_subset_is_deterministic_per_seed_and_pair_and_varies_between_pairs()
    {
        var options = new PartialPairOptions { Positions = new PrefixPositions.RandomSubset(5, Seed: 42), MinPrefixLength = 2 };
        var first = PartialPairs.SelectPrefixLengths(40, options, pairIndex: 7);
        Assert.Equal(first, PartialPairs.SelectPrefixLengths(40, options, pairIndex: 7));
        Assert.Equal(5, first.Distinct().Count());
        Assert.True(first.SequenceEqual(first.Order()));
        Assert.All(first, i => Assert.InRange(i, 2, 40));

        var perPair = Enumerable.Range(0, 20).Select(k => string.Join(",", PartialPairs.SelectPrefixLengths(40, options, k))).ToList();
        Assert.True(perPair.Distinct().Count() > 15, "different pairs should get different positions");
        var otherSeed = options with { Positions = new PrefixPositions.RandomSubset(5, Seed: 43) };
        Assert.NotEqual(first, PartialPairs.SelectPrefixLengths(40, otherSeed, pairIndex: 7));

        // Asking for more positions than exist gives all of them.
        Assert.Equal([2, 3, 4], PartialPairs.SelectPrefixLengths(4, options, 0));
    }

    [Fact]
    public void Invalid_positions_are_user_errors()
    {
        Assert.Throws<PargsException>(() => PartialPairs.SelectPrefixLengths(5, new PartialPairOptions { Positions = new PrefixPositions.Stride(0) }, 0));
        Assert.Throws<PargsException>(() => PartialPairs.SelectPrefixLengths(5, new PartialPairOptions { Positions = new PrefixPositions.RandomSubset(0, 1) }, 0));
    }
}
