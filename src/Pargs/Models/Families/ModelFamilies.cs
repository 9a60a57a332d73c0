using Pargs.Models.Families.Gemma;
using Pargs.Models.Families.Gpt2;
using Pargs.Models.Families.GptNeoX;
using Pargs.Models.Families.Llama;
using Pargs.Models.Families.Phi3;
using Pargs.Models.Families.Qwen3;

namespace Pargs.Models.Families;

/// <summary>
/// The registry of model families: config.json's <c>model_type</c> (and <c>architectures[0]</c>) → the
/// <see cref="IModelFamily"/> that reads, builds and names that model. The built-in families register here;
/// a new family is one folder under Models/Families and one <see cref="Register"/> line.
/// </summary>
public static class ModelFamilies
{
    static readonly object Gate = new();
    static readonly Dictionary<string, IModelFamily> ByModelType = new(StringComparer.Ordinal);
    static readonly Dictionary<string, IModelFamily> ByArchitecture = new(StringComparer.Ordinal);

    static ModelFamilies()
    {
        Register(new LlamaFamily());
        Register(new Gpt2Family());
        Register(new Qwen3Family());
        Register(new GemmaFamily());
        Register(new Phi3Family());
        Register(new GptNeoXFamily());
    }

    /// <summary>Adds <paramref name="family"/>; registering the same object again is a no-op, a model_type claimed by another family is an error.</summary>
    public static void Register(IModelFamily family)
    {
        lock (Gate)
        {
            foreach (var type in family.ModelTypes)
                if (ByModelType.TryGetValue(type, out var other) && !ReferenceEquals(other, family))
                    throw new InvalidOperationException($"model_type \"{type}\" is already registered by family {other.Name}");
            foreach (var type in family.ModelTypes) ByModelType[type] = family;
            foreach (var architecture in family.Architectures) ByArchitecture[architecture] = family;
        }
    }

    /// <summary>Every registered model_type, sorted (for messages).</summary>
    public static IReadOnlyList<string> ModelTypes
    {
        get { lock (Gate) return ByModelType.Keys.Order(StringComparer.Ordinal).ToList(); }
    }

    /// <summary>The family of <paramref name="modelType"/>; unknown is a <see cref="PargsException"/> listing the registered ones.</summary>
    public static IModelFamily ForModelType(string modelType, string? source = null)
    {
        lock (Gate)
            if (ByModelType.TryGetValue(modelType, out var family)) return family;
        throw new PargsException($"{(source is null ? "" : source + ": ")}unknown model_type \"{modelType}\" (Pargs runs {string.Join(", ", ModelTypes)})");
    }

    /// <summary>The family whose checkpoints carry <paramref name="architecture"/> in config.json, or null.</summary>
    public static IModelFamily? ForArchitecture(string architecture)
    {
        lock (Gate) return ByArchitecture.GetValueOrDefault(architecture);
    }
}
