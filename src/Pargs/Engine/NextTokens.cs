using Pargs.Decoding;
using static TorchSharp.torch;

namespace Pargs.Engine;

/// <summary>
/// The next-token distribution of every row of a session after a step: what a decoding rule reads. Local
/// engines hold the full log-probabilities [B, V]; an engine that can only return each row's top tokens
/// (a remote server) answers <see cref="TopK"/> and refuses <see cref="LogProbs"/>, so a method that needs
/// the whole vocabulary says so instead of reading a truncated distribution.
/// </summary>
public sealed class NextTokens
{
    readonly Tensor? logProbs;

    /// <param name="logProbs">log π(v | x, y&lt;t) for every token v: [B, V].</param>
    public NextTokens(Tensor logProbs) => this.logProbs = logProbs;

    /// <summary>log π(v | x, y&lt;t) for every token v: [B, V].</summary>
    public Tensor LogProbs => logProbs ?? throw new PargsException("this engine returns only each row's top tokens, not the whole distribution");

    /// <summary>The k most likely tokens per row, most likely first: (log-probs [B, k], ids [B, k]).</summary>
    public (Tensor LogProbs, Tensor Ids) TopK(int k) => DecodingSteps.TopK(LogProbs, k);

    /// <summary>Nucleus candidates per row (see <see cref="DecodingSteps.TopP"/>).</summary>
    public (float[][] LogProbs, long[][] Ids) TopP(double p) => DecodingSteps.TopP(LogProbs, p);
}
