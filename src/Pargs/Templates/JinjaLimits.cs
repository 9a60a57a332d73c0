namespace Pargs.Templates;

/// <summary>
/// Bounds on one render, because a template is untrusted text: a loop or recursion that would not end, or an
/// output that would fill memory, stops with an error naming the template and line instead.
/// </summary>
public static class JinjaLimits
{
    /// <summary>Characters of rendered text (also the bound on any one string a template builds).</summary>
    public const int MaxOutputChars = 16 * 1024 * 1024;
    /// <summary>Loop iterations over the whole render (summed over all loops, range() included).</summary>
    public const int MaxLoopIterations = 1_000_000;
    /// <summary>Nested macro calls (a macro calling itself).</summary>
    public const int MaxCallDepth = 100;
}
