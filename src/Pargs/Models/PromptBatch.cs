namespace Pargs.Models;

/// <summary>
/// What every session does to a batch of prompts before a forward, on the host (no torch: the torch-free
/// <see cref="Engine.HostSession"/> shares it with <see cref="BatchSession"/>): left padding, so that every row's newest
/// token sits in the same slot, and the context check on the positions the longest row will need.
/// </summary>
internal static class PromptBatch
{
    /// <summary>
    /// <paramref name="prompts"/> left-padded to the longest: ids [B · T] row-major (padding = 0) and which are real
    /// tokens [B · T]. An empty prompt is refused (a row needs a token to predict from).
    /// </summary>
    public static (long[] Ids, bool[] Valid, int Longest) LeftPadded(IReadOnlyList<int[]> prompts)
    {
        if (prompts.Any(p => p.Length == 0)) throw new PargsException("a prompt has no tokens (add BOS or some text)");
        int longest = prompts.Max(p => p.Length);
        var ids = new long[prompts.Count * longest];
        var valid = new bool[prompts.Count * longest];
        for (int b = 0; b < prompts.Count; b++)
        {
            int pad = longest - prompts[b].Length;
            for (int t = 0; t < prompts[b].Length; t++)
            {
                ids[b * longest + pad + t] = prompts[b][t];
                valid[b * longest + pad + t] = true;
            }
        }
        return (ids, valid, longest);
    }

    /// <summary>
    /// The longest row after committing <paramref name="valid"/> [rows, t] on top of <paramref name="committed"/> tokens per
    /// row will need that many positions: it must fit the model's context (<paramref name="context"/>).
    /// </summary>
    public static void EnsureContext(long[] committed, bool[] valid, int rows, int t, int context)
    {
        long longest = 0;
        for (int b = 0; b < rows; b++) longest = Math.Max(longest, committed[b] + valid.AsSpan(b * t, t).Count(true));
        EnsureFits(longest, context);
    }

    /// <summary>A row that needs <paramref name="positionsNeeded"/> positions must fit the model's context (<paramref name="context"/>).</summary>
    public static void EnsureFits(long positionsNeeded, int context)
    {
        if (positionsNeeded > context)
            throw new PargsException($"the sequence needs {positionsNeeded} positions but the model's context is {context} (max_position_embeddings); shorten the prompt or max_new_tokens");
    }
}
