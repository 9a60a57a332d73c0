namespace Pargs.Data;

/// <summary>One turn of a conversation as TRL's conversational format writes it: <c>{"role","content"}</c>.</summary>
public sealed record ChatMessage(string Role, string Content)
{
    public const string System = "system";
    public const string User = "user";
    public const string Assistant = "assistant";
}
