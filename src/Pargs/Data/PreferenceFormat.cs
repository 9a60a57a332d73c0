namespace Pargs.Data;

/// <summary>The row layouts TRL knows, plus OpenAI's TL;DR comparisons. <see cref="Auto"/> detects from the first valid row.</summary>
public enum PreferenceFormat
{
    Auto,
    /// <summary><c>{"prompt","chosen","rejected"}</c> strings; the prompt is user text rendered by the template.</summary>
    Explicit,
    /// <summary><c>{"chosen","rejected"}</c> whole dialogues (HH-RLHF); prompt = text up to the last "\n\nAssistant:".</summary>
    ImplicitPrompt,
    /// <summary><c>{"prompt","chosen","rejected"}</c> lists of <c>{"role","content"}</c> messages.</summary>
    Conversational,
    /// <summary><c>{"chosen","rejected"}</c> message lists; prompt = their shared leading messages.</summary>
    ImplicitConversational,
    /// <summary>OpenAI summarize-from-feedback comparisons: <c>info.post</c>, <c>summaries[].text</c>, <c>choice</c>.</summary>
    TlDr,
}
