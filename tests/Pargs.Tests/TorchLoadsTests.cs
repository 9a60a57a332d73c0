using static TorchSharp.torch;

namespace Pargs.Tests;

/// <summary>Fails at once if the Debian 12 libstdc++ fix in Directory.Build.targets regresses.</summary>
public class TorchLoadsTests
{
    [Fact]
    public void A_matmul_runs_on_the_cpu()
    {
        using var a = tensor(new float[] { 1, 2, 3, 4 }, 2, 2);
        using var b = a.matmul(a);
        Assert.Equal(new float[] { 7, 10, 15, 22 }, b.data<float>().ToArray());
    }
}
