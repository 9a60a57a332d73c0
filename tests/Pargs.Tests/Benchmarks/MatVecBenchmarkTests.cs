using System.Globalization;
using Pargs.Benchmarks;

namespace Pargs.Tests.Benchmarks;

/// <summary>
/// <c>pargs bench matvec --activation-rows N</c>: the products of several activation rows (PARGS's k candidates in the
/// reward model's step) are timed, a skipped cell (a K-quant on 896 columns) keeps the table's shape, and a row count
/// the product cannot take is refused with the option's name.
/// </summary>
public class MatVecBenchmarkTests
{
    [Fact]
    public void Times_products_of_ten_activation_rows_and_keeps_the_table_shape_for_skipped_cells()
    {
        var options = new MatVecBenchmarkOptions
        {
            Threads = new[] { 1 }, Shapes = new[] { "0.5b" }, Formats = new[] { "q8_0", "q4_K" },
            SecondsPerConfig = 0.01, WorkingSetMiB = 8, ActivationRows = 10,
        };
        var table = MatVecBenchmark.Run(options);
        Assert.Contains("10 activation rows", table.Title);
        Assert.Equal(4, table.Rows.Count); // ffn_up and ffn_down, q8_0 and q4_K
        int cpuColumn = table.Columns.ToList().FindIndex(c => c.StartsWith("CPU ms median", StringComparison.Ordinal));
        Assert.True(cpuColumn > 0, "a thread-CPU column");
        foreach (var row in table.Rows.Where(r => r[2] == "q8_0"))
        {
            double p10 = double.Parse(row[4].Split(" / ")[0], CultureInfo.InvariantCulture);
            double cpu = double.Parse(row[cpuColumn], CultureInfo.InvariantCulture);
            Assert.True(p10 > 0 && cpu > 0, $"{row[1]}: {row[4]}, CPU {row[cpuColumn]}");
        }
        // Qwen2.5-0.5B's 896 columns are not whole 256-value super-blocks: the cell says so, in the speed-up column, and
        // the CPU column still has its dash.
        var skipped = Assert.Single(table.Rows, r => r[2] == "q4_K" && r[1].StartsWith("ffn_up", StringComparison.Ordinal));
        Assert.StartsWith("n/a", skipped[cpuColumn - 1]);
        Assert.Equal("—", skipped[cpuColumn]);
    }

    [Fact]
    public void Refuses_zero_activation_rows()
    {
        var e = Assert.Throws<PargsException>(() => MatVecBenchmark.Run(new MatVecBenchmarkOptions { Formats = new[] { "q8_0" }, ActivationRows = 0 }));
        Assert.Contains("--activation-rows", e.Message);
    }
}
