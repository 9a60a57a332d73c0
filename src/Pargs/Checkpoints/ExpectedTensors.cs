using Pargs.Models;
using TorchSharp;

namespace Pargs.Checkpoints;

/// <summary>
/// The Hugging Face tensor names and shapes a config implies, so a loader can say "missing
/// model.layers.3.mlp.up_proj.weight" or "wrong shape" at load time instead of failing somewhere inside a
/// forward pass. A shape entry of -1 means "any size" (e.g. the number of labels of a score head).
/// </summary>
public static class ExpectedTensors
{
    public static List<(string Name, long[] Shape)> For(ModelConfig c, string? architecture)
    {
        var list = new List<(string, long[])>();
        long h = c.HiddenSize, ff = c.IntermediateSize, v = c.VocabSize;
        bool classifier = architecture?.EndsWith("ForSequenceClassification", StringComparison.Ordinal) == true;
        if (c.Family == ModelFamily.Llama)
        {
            list.Add(("model.embed_tokens.weight", [v, h]));
            for (int i = 0; i < c.NumLayers; i++)
            {
                string p = $"model.layers.{i}.";
                list.Add((p + "input_layernorm.weight", [h]));
                list.Add((p + "self_attn.q_proj.weight", [c.NumHeads * c.HeadDim, h]));
                list.Add((p + "self_attn.k_proj.weight", [c.KvDim, h]));
                list.Add((p + "self_attn.v_proj.weight", [c.KvDim, h]));
                list.Add((p + "self_attn.o_proj.weight", [h, c.NumHeads * c.HeadDim]));
                if (c.AttentionBias)
                {
                    list.Add((p + "self_attn.q_proj.bias", [c.NumHeads * c.HeadDim]));
                    list.Add((p + "self_attn.k_proj.bias", [c.KvDim]));
                    list.Add((p + "self_attn.v_proj.bias", [c.KvDim]));
                }
                list.Add((p + "post_attention_layernorm.weight", [h]));
                list.Add((p + "mlp.gate_proj.weight", [ff, h]));
                list.Add((p + "mlp.up_proj.weight", [ff, h]));
                list.Add((p + "mlp.down_proj.weight", [h, ff]));
            }
            list.Add(("model.norm.weight", [h]));
        }
        else
        {
            list.Add(("transformer.wte.weight", [v, h]));
            list.Add(("transformer.wpe.weight", [c.MaxPositions, h]));
            for (int i = 0; i < c.NumLayers; i++)
            {
                // GPT-2 uses Conv1D: weights are stored [in, out], the transpose of nn.Linear.
                string p = $"transformer.h.{i}.";
                list.Add((p + "ln_1.weight", [h]));
                list.Add((p + "ln_1.bias", [h]));
                list.Add((p + "attn.c_attn.weight", [h, 3 * h]));
                list.Add((p + "attn.c_attn.bias", [3 * h]));
                list.Add((p + "attn.c_proj.weight", [h, h]));
                list.Add((p + "attn.c_proj.bias", [h]));
                list.Add((p + "ln_2.weight", [h]));
                list.Add((p + "ln_2.bias", [h]));
                list.Add((p + "mlp.c_fc.weight", [h, ff]));
                list.Add((p + "mlp.c_fc.bias", [ff]));
                list.Add((p + "mlp.c_proj.weight", [ff, h]));
                list.Add((p + "mlp.c_proj.bias", [h]));
            }
            list.Add(("transformer.ln_f.weight", [h]));
            list.Add(("transformer.ln_f.bias", [h]));
        }
        if (classifier) list.Add(("score.weight", [-1, h]));
        else if (!c.TieWordEmbeddings) list.Add(("lm_head.weight", [v, h]));
        return list;
    }

    /// <summary>Throws a <see cref="PargsException"/> naming the first missing or misshapen tensor.</summary>
    public static void Check(ModelConfig config, string? architecture, IReadOnlyDictionary<string, torch.Tensor> tensors, string source)
    {
        // Every layer needs tensors of its own: a layer count beyond the tensors present (num_hidden_layers: 2e9)
        // is refused before the list of expected names is built, which would otherwise grow to gigabytes.
        if (config.NumLayers > tensors.Count)
            throw new PargsException($"{source}: the config claims {config.NumLayers} layers but the checkpoint holds only {tensors.Count} tensors");
        foreach (var (name, shape) in For(config, architecture))
        {
            if (!tensors.TryGetValue(name, out var t))
                throw new PargsException($"{source}: missing tensor \"{name}\" required by the config ({config.ModelType}, {config.NumLayers} layers{(architecture is null ? "" : ", " + architecture)})");
            var actual = t.shape;
            bool ok = actual.Length == shape.Length;
            for (int i = 0; ok && i < shape.Length; i++) ok = shape[i] < 0 || shape[i] == actual[i];
            if (!ok)
                throw new PargsException($"{source}: tensor \"{name}\" has shape [{string.Join(", ", actual)}] but the config implies [{string.Join(", ", shape.Select(d => d < 0 ? "*" : d.ToString()))}]");
        }
    }
}
