using System.Text;

namespace Pargs.Benchmarks;

/// <summary>A titled table of benchmark results, printable as Markdown (the CLI also renders it on the console).</summary>
public sealed class BenchTable
{
    public BenchTable(string title, params string[] columns)
    {
        Title = title;
        Columns = columns;
    }

    public string Title { get; }
    public IReadOnlyList<string> Columns { get; }
    public List<string[]> Rows { get; } = new();
    public List<string> Notes { get; } = new();

    public void Add(params string[] cells)
    {
        if (cells.Length != Columns.Count) throw new ArgumentException($"expected {Columns.Count} cells, got {cells.Length}");
        Rows.Add(cells);
    }

    public string ToMarkdown()
    {
        var md = new StringBuilder();
        md.AppendLine($"### {Title}").AppendLine();
        md.AppendLine("| " + string.Join(" | ", Columns) + " |");
        md.AppendLine("|" + string.Concat(Columns.Select(_ => "---|")));
        foreach (var row in Rows) md.AppendLine("| " + string.Join(" | ", row) + " |");
        if (Notes.Count > 0)
        {
            md.AppendLine();
            foreach (var note in Notes) md.AppendLine($"- {note}");
        }
        return md.AppendLine().ToString();
    }
}
