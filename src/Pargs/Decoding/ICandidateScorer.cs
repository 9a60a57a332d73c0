using static TorchSharp.torch;

namespace Pargs.Decoding;

/// <summary>
/// The reward step of guided decoding, for the rows of a session: r(x, y&lt;t ∘ v) for k candidate LM tokens v
/// per row, over a prefix that grows by the chosen candidate each step. Rows join and leave between steps as
/// they do in the LM session (<see cref="Engine.ILanguageModelSession"/>), numbered the same way.
/// </summary>
public interface ICandidateScorer : IDisposable
{
    int Rows { get; }

    /// <summary>Adds one row per prompt (LM ids, BOS included) after the existing rows.</summary>
    void AddRows(IReadOnlyList<int[]> prompts);

    /// <summary>Keeps the rows listed, in that order (as <see cref="Engine.ILanguageModelSession.KeepRows"/>).</summary>
    void KeepRows(int[] rows);

    /// <summary>
    /// Rewards [B][k] of the candidate LM ids [B, k], on the host (the rest of a step — combine, choose — runs
    /// per row there). Rows not <paramref name="active"/> (finished) may get any value; nothing is committed.
    /// </summary>
    float[][] Score(Tensor candidates, IReadOnlyList<bool> active);

    /// <summary>Extends each row by its candidate in column <paramref name="chosen"/>[b] of the last <see cref="Score"/>.</summary>
    void Commit(int[] chosen);
}

/// <summary>How candidates were scored and prefixes extended — to see (and test) which paths a run took.</summary>
public sealed class CandidateScoringCounts
{
    /// <summary>Candidates scored as one-token siblings over the RM's cached prefix.</summary>
    public long Siblings { get; set; }
    /// <summary>Candidates that extend the RM's cached prefix by several tokens, scored over the cache in the same packed pass.</summary>
    public long Extensions { get; set; }
    /// <summary>Candidates that leave the RM's text unchanged (a held-back byte, a special token): the prefix's reward.</summary>
    public long Unchanged { get; set; }
    /// <summary>Candidates whose retokenization changed earlier RM tokens of the cached prefix, or scored by the reference engine: a cache-free full forward each.</summary>
    public long FullForwards { get; set; }
    /// <summary>Steps whose choice was committed by copying sibling keys/values (no forward).</summary>
    public long SiblingCommits { get; set; }
    /// <summary>Steps whose choice was committed by appending new RM tokens to the cache (one small forward).</summary>
    public long AppendCommits { get; set; }
    /// <summary>Steps where a row's earlier RM tokens changed, so the batch's RM cache was rebuilt.</summary>
    public long Rebuilds { get; set; }
}

/// <summary>
/// A scorer that can start scoring a row's next candidates the moment the language model's answer for that row is in,
/// before the step's other rows have answered (a remote reward model: its request goes out while the LM server still works
/// on the other rows, so the two servers, or a server's two workers, overlap within one batch). What <see cref="ICandidateScorer.Score"/>
/// is then asked must be exactly what was prefetched — the same row, prefix and candidates — or it is asked anew: a prefetch
/// changes when a request is sent, never what a step scores.
/// </summary>
public interface IPrefetchingScorer
{
    /// <summary>
    /// Row <paramref name="row"/>'s language model answered with <paramref name="candidates"/> (its most likely tokens, most
    /// likely first), and the row is still running (the decoder does not announce a finished row). Called from the thread
    /// that read the answer while the decoding thread waits for the step (so the scorer's rows do not change meanwhile);
    /// must not block.
    /// </summary>
    void Prefetch(int row, long[] candidates);
}

/// <summary>A language-model session whose rows' answers arrive one at a time (a remote engine's), and can say so per row.</summary>
public interface IRowAnswerSource
{
    /// <summary>Called with (row, its candidate ids) as each row's answer of a step arrives; null = nobody listens.</summary>
    Action<int, long[]>? RowAnswered { set; }
}
