using Pargs.Data;

namespace Pargs.Tests.Data;

public class DataSplitTests
{
    [Fact]
    public void Split_is_seeded_disjoint_complete_and_order_preserving()
    {
        var items = Enumerable.Range(0, 100).ToList();
        var (train, eval) = DataSplit.Split(items, 0.2, seed: 1);
        Assert.Equal(20, eval.Count);
        Assert.Equal(80, train.Count);
        Assert.Equal(items, train.Concat(eval).Order());
        Assert.True(eval.SequenceEqual(eval.Order()));

        var again = DataSplit.Split(items, 0.2, seed: 1);
        Assert.Equal(eval, again.Eval);
        Assert.NotEqual(eval, DataSplit.Split(items, 0.2, seed: 2).Eval);
        Assert.NotEqual(Enumerable.Range(0, 20), eval); // actually shuffled, not the first 20

        Assert.Empty(DataSplit.Split(items, 0, seed: 1).Eval);
        Assert.Throws<PargsException>(() => DataSplit.Split(items, 1.0, seed: 1));
    }
}
