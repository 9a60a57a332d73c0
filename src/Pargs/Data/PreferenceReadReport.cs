namespace Pargs.Data;

/// <summary>Why a row was rejected.</summary>
public enum BadRowReason
{
    InvalidJson,
    UnknownFormat,
    MissingField,
    WrongType,
    InvalidValue,
    EmptyResponse,
    IdenticalResponses,
    PromptMismatch,
    /// <summary>The row has more bytes than <see cref="PreferenceReadOptions.MaxRowBytes"/>; refused before parsing or tokenizing.</summary>
    TooLong,
}

/// <summary>A row left out under <see cref="BadRowPolicy.Skip"/>, with the same message Fail would have thrown.</summary>
public sealed record SkippedRow(int Line, BadRowReason Reason, string Message);

/// <summary>
/// What reading a file did: <see cref="RowsRead"/> non-blank lines, <see cref="RowsKept"/> pairs, and every skipped
/// row with its reason. <see cref="Format"/> is the format used (detected or forced).
/// </summary>
public sealed record PreferenceReadReport(
    string Path,
    PreferenceFormat Format,
    int RowsRead,
    int RowsKept,
    IReadOnlyList<SkippedRow> Skipped)
{
    public int RowsSkipped => Skipped.Count;

    public IReadOnlyDictionary<BadRowReason, int> SkippedByReason =>
        Skipped.GroupBy(s => s.Reason).ToDictionary(g => g.Key, g => g.Count());
}

/// <summary>The pairs of a file and the report of how they were read.</summary>
public sealed record PreferenceReadResult(IReadOnlyList<PreferencePair> Pairs, PreferenceReadReport Report);
