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

    /// <summary>How the caller's user turns on <see cref="BadRowPolicy.Skip"/> (an option or a config field), for the error's hint.</summary>
    public string SkipSetting { get; init; } = "--on-bad-row skip, or OnBadRow = Skip in the library,";
}
