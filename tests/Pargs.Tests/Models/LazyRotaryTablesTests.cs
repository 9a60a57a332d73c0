using Pargs.Models;
using Pargs.Models.Families.Llama;
using static TorchSharp.torch;

namespace Pargs.Tests.Models;

/// <summary>
/// Rotary tables tabulated on demand (decode-only models): a grown table's rows are exactly the full table's, and a
/// stored model decodes past its first tabulation as the float32 model does.
/// </summary>
public class LazyRotaryTablesTests
{
    [Theory]
    [InlineData(null)]
    [InlineData("linear")]
    [InlineData("llama3")]
    public void Grown_tables_equal_the_full_tables_row_for_row(string? scalingType)
    {
        var scaling = scalingType switch
        {
            "linear" => new RopeScaling { Type = "linear", Factor = 2.0 },
            "llama3" => new RopeScaling { Type = "llama3", Factor = 8.0, LowFreqFactor = 1.0, HighFreqFactor = 4.0, OriginalMaxPositions = 64 },
            _ => null,
        };
        using var full = new RotaryEmbedding(16, 200, 10000.0, scaling);
        using var lazy = new RotaryEmbedding(16, 200, 10000.0, scaling, initialRows: 3);
        Assert.Equal(3, lazy.TabulatedPositions);
        foreach (int length in new[] { 2, 3, 4, 9, 57, 200 })
        {
            // Positions up to length − 1 (the last one included), as a forward of a row that long reads them.
            using var positions = HeldScalars.Arange(length, ScalarType.Int64).flip(0).unsqueeze(0);
            var (cos, sin) = lazy.At(positions);
            var (fullCos, fullSin) = full.At(positions);
            Assert.True(lazy.TabulatedPositions >= length, $"{lazy.TabulatedPositions} positions tabulated for a row of {length}");
            Assert.True(cos.eq(fullCos).all().item<bool>() && sin.eq(fullSin).all().item<bool>(), $"rows differ from the full tables after growing to {length}");
        }
        Assert.Equal(200, lazy.TabulatedPositions); // never past the context
    }
}
