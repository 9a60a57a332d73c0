using Pargs.Models;
using TorchSharp;

namespace Pargs.Checkpoints;

/// <summary>
/// The Hugging Face tensor names and shapes a config implies, so a loader can say "missing
/// model.layers.3.mlp.up_proj.weight" or "wrong shape" at load time instead of failing somewhere inside a
/// forward pass. The backbone's tensors are the family's declaration (<see cref="Models.Families.IModelFamily.BackboneTensors"/>)
/// under its prefix; the head is <c>score</c> or <c>lm_head</c>. A shape entry of -1 means "any size"
/// (e.g. the number of labels of a score head).
/// </summary>
public static class ExpectedTensors
{
    public static List<(string Name, long[] Shape)> For(ModelConfig c, string? architecture)
    {
        var family = c.Family;
        var list = family.BackboneTensors(c).Select(t => (family.HuggingFacePrefix + "." + t.Name, t.Shape)).ToList();
        bool classifier = architecture?.EndsWith("ForSequenceClassification", StringComparison.Ordinal) == true;
        if (classifier) list.Add(("score.weight", [-1, c.HiddenSize]));
        else if (!c.TieWordEmbeddings) list.Add(("lm_head.weight", [c.VocabSize, c.HiddenSize]));
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
