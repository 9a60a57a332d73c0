using System.Text;
using Pargs.Models.Families;

namespace Pargs.Tests.Models.Families;

/// <summary>
/// docs/config-fields.md is the families' own field tables rendered: this test renders them and compares, so the
/// page cannot drift from the code. After changing a table, rerun with PARGS_UPDATE_DOCS=1 to rewrite the page.
/// </summary>
public class ConfigFieldsDocTests
{
    static string Render()
    {
        var text = new StringBuilder();
        text.AppendLine("# config.json fields by model type");
        text.AppendLine();
        text.AppendLine("Generated from each family's `ConfigFields` table (`ConfigFieldsDocTests` keeps it current). **honoured**: read and");
        text.AppendLine("implemented; **refused unless default**: accepted only at the value Pargs computes (shown), any other value is an");
        text.AppendLine("error naming field, value and model type; **irrelevant**: no effect on inference outputs. Fields not listed are");
        text.AppendLine("not read. `ConfigFidelityTests` proves each row: honoured fields give an independent reference's logits,");
        text.AppendLine("refused ones are refused, irrelevant ones change nothing.");
        foreach (var modelType in ModelFamilies.ModelTypes.Where(t => !t.StartsWith("pargs-", StringComparison.Ordinal)))
        {
            var family = ModelFamilies.ForModelType(modelType);
            text.AppendLine();
            text.AppendLine($"## {modelType} (family {family.Name})");
            text.AppendLine();
            text.AppendLine("| field | use | note |");
            text.AppendLine("|---|---|---|");
            foreach (var field in family.ConfigFields(modelType).OrderBy(f => f.Use).ThenBy(f => f.Name, StringComparer.Ordinal))
            {
                string use = field.Use switch
                {
                    ConfigFieldUse.Honoured => "honoured",
                    ConfigFieldUse.RefusedUnlessDefault => "refused unless default",
                    _ => "irrelevant",
                };
                text.AppendLine($"| `{field.Name}` | {use} | {field.Note} |");
            }
        }
        return text.ToString();
    }

    [Fact]
    public void The_config_fields_page_is_the_families_tables()
    {
        string path = Path.Combine(TestPaths.RepoRoot, "docs", "config-fields.md");
        string expected = Render();
        if (Environment.GetEnvironmentVariable("PARGS_UPDATE_DOCS") == "1") File.WriteAllText(path, expected);
        Assert.True(File.Exists(path) && File.ReadAllText(path) == expected,
            "docs/config-fields.md differs from the families' ConfigFields tables; rerun this test with PARGS_UPDATE_DOCS=1");
    }
}
