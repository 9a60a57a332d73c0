namespace Pargs.Models.Families;

/// <summary>What a family does with a config.json field.</summary>
public enum ConfigFieldUse
{
    /// <summary>Read and implemented: a different value gives a different (correct) computation.</summary>
    Honoured,
    /// <summary>Accepted at the value that matches what Pargs computes; any other value is refused with one line.</summary>
    RefusedUnlessDefault,
    /// <summary>Read by transformers but without effect on inference outputs (dropout, initialisation, caching switches…).</summary>
    Irrelevant,
}

/// <summary>One row of a family's table of known config.json fields.</summary>
public sealed record ConfigField(string Name, ConfigFieldUse Use, string Note = "");
