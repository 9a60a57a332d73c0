using Pargs.Models;
using TorchSharp;

namespace Pargs.Tests.Models;

/// <summary>
/// A saved snapshot's copies are freed as soon as the save is done (or failed), not left to the finalizer: a snapshot is
/// a whole model's worth of native memory the GC does not see.
/// </summary>
public class StateDictSnapshotTests
{
    [Fact]
    public void A_snapshot_used_for_a_save_is_freed_after_it_and_after_a_failed_one()
    {
        using var module = torch.nn.Linear(3, 2);
        var seen = new List<torch.Tensor>();
        StateDict.Use(StateDict.Snapshot(module), weights =>
        {
            Assert.Equal(["weight", "bias"], weights.Keys);
            Assert.All(weights.Values, t => Assert.False(t.IsInvalid));
            seen.AddRange(weights.Values);
        });
        Assert.Equal(2, seen.Count);
        Assert.All(seen, t => Assert.True(t.IsInvalid));
        Assert.False(module.weight!.IsInvalid); // copies, not the module's own parameters

        seen.Clear();
        Assert.Throws<PargsException>(() => StateDict.Use(StateDict.Snapshot(module), weights =>
        {
            seen.AddRange(weights.Values);
            throw new PargsException("disk full");
        }));
        Assert.All(seen, t => Assert.True(t.IsInvalid));
    }
}
