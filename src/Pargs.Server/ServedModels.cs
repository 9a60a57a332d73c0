using System.Text.RegularExpressions;
using Pargs.Data;
using Pargs.Models;
using Pargs.Rewards;

namespace Pargs.Server;

/// <summary>A language model the server answers for, by name, with the chat template its chat requests use.</summary>
public sealed record ServedLanguageModel(string Name, CausalLM Model, PromptTemplate ChatTemplate, string? DefaultRewardModel);

/// <summary>
/// A reward model the server scores with, by name (guided decoding, /v1/rewards): any <see cref="IRewardModel"/> — a causal
/// one with a score head, an encoder classifier (BERT, RoBERTa, DistilBERT, DeBERTa), one with a vocabulary head.
/// </summary>
public sealed record ServedRewardModel(string Name, IRewardModel Model);

/// <summary>
/// The models loaded at start, by name. Requests name models, never paths: a name is looked up here and nothing a
/// request says reaches the file system.
/// </summary>
public sealed partial class ServedModels(bool disposeModels = true) : IDisposable
{
    readonly Dictionary<string, ServedLanguageModel> languageModels = new(StringComparer.Ordinal);
    readonly Dictionary<string, ServedRewardModel> rewardModels = new(StringComparer.Ordinal);

    public IReadOnlyCollection<ServedLanguageModel> LanguageModels => languageModels.Values;
    public IReadOnlyCollection<ServedRewardModel> RewardModels => rewardModels.Values;

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")]
    private static partial Regex NamePattern();

    /// <summary>
    /// Adds a language model. Its default reward model (for guided methods when a request names none) is
    /// <paramref name="defaultRewardModel"/>, else the first reward model added.
    /// </summary>
    public ServedModels AddLanguageModel(string name, CausalLM model, PromptTemplate? chatTemplate = null, string? defaultRewardModel = null)
    {
        CheckNewName(name);
        if (model.Tokenizer is null) throw new PargsException($"model {name} ({model.Source}): no tokenizer found; the server needs one to read prompts");
        languageModels[name] = new ServedLanguageModel(name, model, chatTemplate ?? PromptTemplate.Plain, defaultRewardModel);
        if (disposeModels) Pargs.Models.Cpu.KeptPanels.MarkInferenceOnly(model.Backbone); // ours, held for inference only: packed once
        return this;
    }

    public ServedModels AddRewardModel(string name, IRewardModel model)
    {
        CheckNewName(name);
        if (model.Tokenizer is null) throw new PargsException($"reward model {name} ({model.Source}): no tokenizer found; the server needs one to read texts");
        rewardModels[name] = new ServedRewardModel(name, model);
        if (disposeModels && model is RewardModel causal) Pargs.Models.Cpu.KeptPanels.MarkInferenceOnly(causal.Backbone);
        return this;
    }

    /// <summary>Whether <paramref name="name"/> may name a served model: letters, digits, '.', '_', ':' or '-', at most 128 characters.</summary>
    public static bool IsValidName(string name) => NamePattern().IsMatch(name);

    void CheckNewName(string name)
    {
        if (!IsValidName(name))
            throw new PargsException($"model name \"{name}\": use letters, digits, '.', '_', ':' or '-' (at most 128 characters)");
        if (languageModels.ContainsKey(name) || rewardModels.ContainsKey(name))
            throw new PargsException($"model name \"{name}\" is given twice; name the models apart (NAME=PATH)");
    }

    /// <summary>The language model a request names; 404 model_not_found otherwise.</summary>
    public ServedLanguageModel LanguageModel(string name, string param = "model")
    {
        if (languageModels.TryGetValue(name, out var served)) return served;
        if (rewardModels.ContainsKey(name))
            throw new ApiException(400, $"The model `{name}` is a reward model; it scores text (/v1/rewards) but does not generate.", param, "model_not_found");
        throw NotFound(name, param, LanguageModels.Select(m => m.Name));
    }

    /// <summary>The reward model a request names; 404 model_not_found otherwise.</summary>
    public ServedRewardModel RewardModel(string name, string param)
    {
        if (rewardModels.TryGetValue(name, out var served)) return served;
        throw NotFound(name, param, RewardModels.Select(m => m.Name));
    }

    static ApiException NotFound(string name, string param, IEnumerable<string> known)
    {
        string shown = name.Length > 80 ? name[..80] + "…" : name;
        string hint = name.Contains('/') || name.Contains('\\') ? " Models are named, not given by path." : "";
        string list = string.Join(", ", known);
        return new ApiException(404, $"The model `{shown}` does not exist.{hint} Served: {(list.Length == 0 ? "(none)" : list)}.", param, "model_not_found");
    }

    /// <summary>Disposes the models unless they were lent (<c>disposeModels: false</c>).</summary>
    public void Dispose()
    {
        if (!disposeModels) return;
        foreach (var m in languageModels.Values)
        {
            Pargs.Models.Cpu.KeptPanels.Release(m.Model.Backbone);
            m.Model.Dispose();
        }
        foreach (var m in rewardModels.Values)
        {
            if (m.Model is RewardModel causal) Pargs.Models.Cpu.KeptPanels.Release(causal.Backbone);
            (m.Model as IDisposable)?.Dispose();
        }
    }
}
