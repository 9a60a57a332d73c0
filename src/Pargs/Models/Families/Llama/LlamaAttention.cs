using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Pargs.Models.Families.Llama;

/// <summary>Grouped-query self-attention with rotary positions (q/k/v biases for Qwen2, an o_proj bias with Llama's
/// attention_bias, per-head q/k RMSNorm for Qwen3).</summary>
public sealed class LlamaAttention : nn.Module
{
    readonly ModelConfig config;
    readonly int layerIndex;
    readonly Linear qProj, kProj, vProj, oProj;
    readonly RmsNorm? qNorm, kNorm;

    public LlamaAttention(ModelConfig config, int layerIndex) : base(nameof(LlamaAttention))
    {
        this.config = config;
        this.layerIndex = layerIndex;
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
            qNorm = new RmsNorm(config.HeadDim, config.NormEps);
            kNorm = new RmsNorm(config.HeadDim, config.NormEps);
            register_module("q_norm", qNorm);
            register_module("k_norm", kNorm);
        }
    }

    public Tensor Forward(Tensor x, Tensor cos, Tensor signedSin, Tensor groupedMask, KvCache? cache)
    {
        long b = x.shape[0], t = x.shape[1];
        int d = config.HeadDim;
        var q = qProj.forward(x).view(b, t, config.NumHeads, d);
        var k = kProj.forward(x).view(b, t, config.NumKvHeads, d);
        if (qNorm is not null) (q, k) = (qNorm.forward(q), kNorm!.forward(k)); // per head, before the rotary
        q = q.transpose(1, 2);
        k = k.transpose(1, 2);
        var v = vProj.forward(x).view(b, t, config.NumKvHeads, d).transpose(1, 2);
        q = RotaryEmbedding.Apply(q, cos, signedSin);
        k = RotaryEmbedding.Apply(k, cos, signedSin);
        if (cache is not null) (k, v) = cache.Write(layerIndex, k, v);
        var o = TransformerBackbone.Attend(q, k, v, groupedMask, config.NumHeads, config.NumKvHeads);
        return oProj.forward(o);
    }
}
