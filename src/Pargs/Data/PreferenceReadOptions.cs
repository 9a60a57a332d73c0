namespace Pargs.Data;

/// <summary>What to do with a row that cannot become a valid pair.</summary>
public enum BadRowPolicy
{
    /// <summary>Stop with a <see cref="PargsException"/> naming file, line and field (the default: bad data should be seen).</summary>
    Fail,
    /// <summary>Leave the row out and count it, by reason, in the <see cref="PreferenceReadReport"/>.</summary>
    Skip,
}

/// <summary>Options of <see cref="PreferenceReader"/>.</summary>
public sealed record PreferenceReadOptions
{
    /// <summary>Row layout; <see cref="PreferenceFormat.Auto"/> detects it from the first valid row of the file.</summary>
    public PreferenceFormat Format { get; init; } = PreferenceFormat.Auto;

    /// <summary>Renders conversational messages, TL;DR posts and explicit prompts. Use the same one at decoding time.</summary>
    public PromptTemplate Template { get; init; } = PromptTemplate.Plain;

    public BadRowPolicy OnBadRow { get; init; } = BadRowPolicy.Fail;

    /// <summary>
    /// Longest row, in bytes, that is parsed at all. A longer row is a bad row (<see cref="BadRowReason.TooLong"/>,
    /// failed or skipped per <see cref="OnBadRow"/>) found before any JSON parsing or tokenizing, and never held in
    /// memory whole: a hostile 50 MB row must not cost minutes of tokenizing or gigabytes.
    /// </summary>
    public int MaxRowBytes { get; init; } = JsonlLines.DefaultMaxLineBytes;

    /// <summary>How the caller's user turns on <see cref="BadRowPolicy.Skip"/> (an option or a config field), for the error's hint.</summary>
    public string SkipSetting { get; init; } = "--on-bad-row skip, or OnBadRow = Skip in the library,";
}
