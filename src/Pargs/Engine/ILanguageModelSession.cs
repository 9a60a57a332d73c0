namespace Pargs.Engine;

/// <summary>
/// A batch of rows over one language model, advanced a token at a time — the engine step API. Rows are
/// numbered 0..<see cref="Rows"/>−1 in the order they were added; <see cref="KeepRows"/> renumbers them.
/// Every call returns the new next-token distribution of every row. Rows may join (<see cref="AddRows"/>) and
/// leave (<see cref="KeepRows"/>) between steps, which is what continuous batching needs; a row's numbers never
/// depend on which other rows share its batch.
/// </summary>
public interface ILanguageModelSession : IDisposable
{
    int Rows { get; }

    /// <summary>Adds one row per prompt (ids, BOS included) after the existing rows and runs the prompts.</summary>
    NextTokens AddRows(IReadOnlyList<int[]> prompts);

    /// <summary>
    /// How many of <paramref name="prompt"/>'s tokens <see cref="AddRows"/> would run now: all of them, less what a prefix
    /// cache holds. A join budget counts these — a remote client's step request carries its whole prefix and runs one token.
    /// </summary>
    int TokensToRun(int[] prompt) => prompt.Length;

    /// <summary>Extends every row by its token (one per row, in row order).</summary>
    NextTokens Append(long[] tokens);

    /// <summary>Keeps the rows listed, in that order (repeats fork a row: one prompt into N samples).</summary>
    NextTokens KeepRows(int[] rows);
}
