namespace Pargs.Models.Families.Gemma;

/// <summary>
/// The Gemma backbone's tensor names and shapes (relative to "model"), written once: the loader's strict checks
/// read them through <see cref="GemmaFamily.BackboneTensors"/>, and a test checks the modules register exactly these.
/// </summary>
public static class GemmaTensors
{
    public const string Embedding = "embed_tokens.weight";
    public const string FinalNorm = "norm.weight";

    /// <summary>One layer's tensors: name under <c>layers.{i}.</c> and shape, or none when the config has no such tensor.</summary>
    static IEnumerable<(string Name, long[] Shape)> Layer(ModelConfig c)
    {
        long h = c.HiddenSize, ff = c.IntermediateSize, q = (long)c.NumHeads * c.HeadDim, kv = c.KvDim;
        yield return ("input_layernorm.weight", [h]);
        yield return ("self_attn.q_proj.weight", [q, h]);
        if (c.AttentionBias) yield return ("self_attn.q_proj.bias", [q]);
        yield return ("self_attn.k_proj.weight", [kv, h]);
        if (c.AttentionBias) yield return ("self_attn.k_proj.bias", [kv]);
        yield return ("self_attn.v_proj.weight", [kv, h]);
        if (c.AttentionBias) yield return ("self_attn.v_proj.bias", [kv]);
        yield return ("self_attn.o_proj.weight", [h, q]);
        if (c.AttentionOutputBias) yield return ("self_attn.o_proj.bias", [h]);
        if (c.QkNorm)
        {
            yield return ("self_attn.q_norm.weight", [c.HeadDim]);
            yield return ("self_attn.k_norm.weight", [c.HeadDim]);
        }
        yield return ("post_attention_layernorm.weight", [h]);
        yield return ("pre_feedforward_layernorm.weight", [h]);
        yield return ("mlp.gate_proj.weight", [ff, h]);
        yield return ("mlp.up_proj.weight", [ff, h]);
        yield return ("mlp.down_proj.weight", [h, ff]);
        yield return ("post_feedforward_layernorm.weight", [h]);
    }

    public static List<TensorSpec> Declare(ModelConfig c)
    {
        var list = new List<TensorSpec> { new(Embedding, [c.VocabSize, c.HiddenSize]) };
        var layer = Layer(c).ToList();
        for (int i = 0; i < c.NumLayers; i++)
            foreach (var (name, shape) in layer) list.Add(new($"layers.{i}.{name}", shape));
        list.Add(new(FinalNorm, [c.HiddenSize]));
        return list;
    }
}
