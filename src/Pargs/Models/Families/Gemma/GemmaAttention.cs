using Pargs.Models.Families.Llama;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Pargs.Models.Families.Gemma;

/// <summary>
/// Gemma's grouped-query self-attention: scores q·kᵀ scaled by query_pre_attn_scalar^−½ (not head_dim^−½),
/// soft-capped as tanh(s / c) · c when attn_logit_softcapping is set (before the mask, as transformers does), then
/// masked and normalised. Gemma-3 normalises each head of q and k (q_norm, k_norm; (1 + w) like every Gemma norm)
/// before the rotary. The scores are computed explicitly, not by the fused SDPA, because the soft-cap sits between
/// the product and the softmax.
/// </summary>
public sealed class GemmaAttention : nn.Module
{
    readonly ModelConfig config;
    readonly int layerIndex;
    readonly double scaling;
    readonly double? softcap;
    readonly Linear qProj, kProj, vProj, oProj;
    readonly GemmaRmsNorm? qNorm, kNorm;

    public GemmaAttention(ModelConfig config, int layerIndex) : base(nameof(GemmaAttention))
    {
        this.config = config;
        this.layerIndex = layerIndex;
        var gemma = GemmaSettings.Of(config);
        scaling = gemma.Scaling;
        softcap = gemma.AttnLogitSoftcapping;
        qProj = nn.Linear(config.HiddenSize, config.NumHeads * config.HeadDim, hasBias: config.AttentionBias);
        kProj = nn.Linear(config.HiddenSize, config.KvDim, hasBias: config.AttentionBias);
        vProj = nn.Linear(config.HiddenSize, config.KvDim, hasBias: config.AttentionBias);
        oProj = nn.Linear(config.NumHeads * config.HeadDim, config.HiddenSize, hasBias: config.AttentionOutputBias);
        register_module("q_proj", qProj);
        register_module("k_proj", kProj);
        register_module("v_proj", vProj);
        register_module("o_proj", oProj);
        if (config.QkNorm)
        {
            qNorm = new GemmaRmsNorm(config.HeadDim, config.NormEps);
            kNorm = new GemmaRmsNorm(config.HeadDim, config.NormEps);
            register_module("q_norm", qNorm);
            register_module("k_norm", kNorm);
        }
    }

    /// <param name="groupedMask">[B, 1, groups·T, S] (true = may attend), already repeated for the query groups and
    /// restricted to the window on a sliding layer.</param>
    public Tensor Forward(Tensor x, Tensor cos, Tensor signedSin, Tensor groupedMask, KvCache? cache)
    {
        long b = x.shape[0], t = x.shape[1];
        int d = config.HeadDim, heads = config.NumHeads, kvHeads = config.NumKvHeads;
        var q = qProj.forward(x).view(b, t, heads, d);
        var k = kProj.forward(x).view(b, t, kvHeads, d);
        if (qNorm is not null) (q, k) = (qNorm.forward(q), kNorm!.forward(k)); // per head, before the rotary
        q = RotaryEmbedding.Apply(q.transpose(1, 2), cos, signedSin);
        k = RotaryEmbedding.Apply(k.transpose(1, 2), cos, signedSin);
        var v = vProj.forward(x).view(b, t, kvHeads, d).transpose(1, 2);
        if (cache is not null) (k, v) = cache.Write(layerIndex, k, v);

        // The H query heads folded into KvH groups of H/KvH heads × T rows: each kv head serves its queries in one
        // product (what repeat_kv does, without copying keys and values).
        int groups = heads / kvHeads;
        var qg = q.reshape(b, kvHeads, groups * t, d);
        // Explicit Scalars held across their calls: TorchSharp frees an implicit Scalar in its finalizer and keeps no reference to it across the native call, so a collection during the call can free what libtorch reads ("Unknown scalar type").
        using Scalar scale = scaling.ToScalar(), masked = float.NegativeInfinity.ToScalar();
        var scores = matmul(qg, k.transpose(2, 3)) * scale;
        if (softcap is { } cap)
        {
            using var capScalar = cap.ToScalar();
            scores = (scores / capScalar).tanh() * capScalar;
        }
        scores = scores.masked_fill(groupedMask.logical_not(), masked);
        var o = matmul(scores.softmax(-1), v);
        return oProj.forward(o.view(b, heads, t, d).transpose(1, 2).reshape(b, t, heads * d));
    }
}
