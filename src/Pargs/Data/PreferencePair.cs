namespace Pargs.Data;

/// <summary>
/// One human (or gold-model) preference as text the model reads: <see cref="Prompt"/> is already rendered
/// (template applied), and <see cref="Chosen"/> / <see cref="Rejected"/> are its two continuations.
/// <see cref="Margin"/> is the optional TRL <c>margin</c> (how much better chosen is);
/// <see cref="SourceLine"/> is the 1-based line of the file it came from (0 when built in code).
/// </summary>
public sealed record PreferencePair(string Prompt, string Chosen, string Rejected, double? Margin = null, int SourceLine = 0);
