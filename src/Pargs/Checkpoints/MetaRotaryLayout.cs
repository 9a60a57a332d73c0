using TorchSharp;

namespace Pargs.Checkpoints;

/// <summary>
/// Meta's original Llama code (and so llama2.c and GGUF) applies rotary embeddings to interleaved pairs
/// (x0,x1), (x2,x3)…; Hugging Face's Llama rotates halves (x_i, x_{i+d/2}). Pargs implements only the
/// Hugging Face form, so q/k projection rows are reordered once at load time — the same permute as
/// transformers' convert_llama_weights_to_hf.py. Attention scores are unchanged because q and k are
/// permuted alike within each head.
/// </summary>
public static class MetaRotaryLayout
{
    /// <summary>
    /// <c>w.view(heads, head_dim/2, 2, in).transpose(1, 2).reshape(out, in)</c>: a new contiguous tensor.
    /// <paramref name="heads"/> is num_attention_heads for q_proj and num_key_value_heads for k_proj.
    /// </summary>
    public static torch.Tensor ToHuggingFace(torch.Tensor w, int heads)
    {
        long outDim = w.shape[0], inDim = w.shape[1];
        if (w.dim() != 2 || outDim % (2L * heads) != 0)
            throw new ArgumentException($"cannot split a [{string.Join(", ", w.shape)}] projection into {heads} heads of even size");
        using var scope = torch.NewDisposeScope();
        return w.view(heads, outDim / heads / 2, 2, inDim).transpose(1, 2).reshape(outDim, inDim).contiguous().MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The inverse, for writing GGUF: <c>w.view(heads, 2, head_dim/2, in).transpose(1, 2).reshape(out, in)</c>,
    /// also for a q/k bias (one dimension). A new contiguous tensor.
    /// </summary>
    public static torch.Tensor FromHuggingFace(torch.Tensor w, int heads)
    {
        long outDim = w.shape[0];
        if (w.dim() is < 1 or > 2 || outDim % (2L * heads) != 0)
            throw new ArgumentException($"cannot split a [{string.Join(", ", w.shape)}] projection into {heads} heads of even size");
        long[] rest = w.dim() == 2 ? [w.shape[1]] : [];
        using var scope = torch.NewDisposeScope();
        return w.view([heads, 2, outDim / heads / 2, .. rest]).transpose(1, 2).reshape([outDim, .. rest]).contiguous().MoveToOuterDisposeScope();
    }
}
