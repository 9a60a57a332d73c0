using Pargs.Models;
using Pargs.Models.Families.Llama;

namespace Pargs.Tests.Models;

/// <summary>
/// The host-mode rotary tables (<see cref="RotaryEmbedding.Host"/>, what the torch-free engine and the stored-precision
/// backbone read) against torch's tables (the float32 model's), row for row, past the 128 rows the host tables start
/// with, for every rope scaling the host tabulates. WHY a direct comparison: the host-vs-torch session tests run the
/// stored backbone on the torch side, which reads the same host tables, so a mistake in them cannot show there.
/// </summary>
public class HostRotaryTablesTests
{
    [Theory]
    [InlineData("default")]
    [InlineData("linear")]
    [InlineData("dynamic")]
    [InlineData("llama3")]
    [InlineData("yarn")]
    public void Host_tables_equal_torch_tables_past_their_first_rows(string type)
    {
        RopeScaling? scaling = type switch
        {
            "linear" => new RopeScaling { Type = "linear", Factor = 4.0 },
            "dynamic" => new RopeScaling { Type = "dynamic", Factor = 2.0 },
            "llama3" => new RopeScaling { Type = "llama3", Factor = 8.0, LowFreqFactor = 1.0, HighFreqFactor = 4.0, OriginalMaxPositions = 256 },
            "yarn" => new RopeScaling { Type = "yarn", Factor = 4.0, OriginalMaxPositions = 256 }, // attention factor 1 + 0.1·ln 4
            _ => null,
        };
        const int headDim = 64, maxPositions = 1024;
        using var torchTables = new RotaryEmbedding(headDim, maxPositions, 10000.0, scaling);
        using var hostTables = RotaryEmbedding.Host(headDim, maxPositions, 10000.0, scaling, initialRows: 128);
        Assert.Equal(128, hostTables.TabulatedPositions);
        foreach (var (from, count) in new[] { (0, 8), (120, 20), (300, 200), (1000, 24) })
        {
            var (expectedCos, expectedSin) = torchTables.TableRows(from, count);
            var (cos, sin) = hostTables.TableRows(from, count);
            Assert.Equal(count * headDim, cos.Length);
            for (int i = 0; i < cos.Length; i++)
            {
                // The same double-precision angles; torch's vectorized cos/sin may round the last float32 bit differently.
                Assert.True(Math.Abs(cos[i] - expectedCos[i]) <= 1e-6f, $"{type}: cos at position {from + i / headDim}, dim {i % headDim}: {cos[i]} vs torch {expectedCos[i]}");
                Assert.True(Math.Abs(sin[i] - expectedSin[i]) <= 1e-6f, $"{type}: signed sin at position {from + i / headDim}, dim {i % headDim}: {sin[i]} vs torch {expectedSin[i]}");
            }
        }
        Assert.Equal(maxPositions, hostTables.TabulatedPositions);
    }
}
