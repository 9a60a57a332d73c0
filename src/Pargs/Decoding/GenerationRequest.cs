using Pargs.Checkpoints;
using Pargs.Decoding.Methods;

namespace Pargs.Decoding;

/// <summary>
/// A generation request as a user states it — the method by name, the settings they gave (unsaid ones
/// null) and the shared ones — resolved here, in the library, into <see cref="DecodingOptions"/> for one
/// model. The CLI today and a server tomorrow resolve requests the same way:
/// <list type="bullet">
/// <item>a setting the method does not read is refused (never silently ignored), naming it as the user wrote it;</item>
/// <item>what the user left unsaid comes from the model's generation_config.json (temperature, top_k, top_p,
/// max_new_tokens), as transformers' generate() does, and only for settings the method reads;</item>
/// <item>the options are validated against the model's vocabulary before anything is generated.</item>
/// </list>
/// </summary>
public sealed record GenerationRequest
{
    public string Method { get; init; } = DecodingMethods.TopK.Name;
    /// <summary>The method settings the user gave (null = unsaid).</summary>
    public MethodSettings Settings { get; init; } = new();
    public int Seed { get; init; }
    /// <summary>Null = the model's generation_config.json max_new_tokens, else 64.</summary>
    public int? MaxNewTokens { get; init; }
    public IReadOnlyList<string> StopStrings { get; init; } = Array.Empty<string>();
    public bool StopAtEos { get; init; } = true;
    public int BatchSize { get; init; } = 8;
    /// <summary>See <see cref="DecodingOptions.Decoders"/>.</summary>
    public int Decoders { get; init; } = 1;
    public DecodingEngine Engine { get; init; } = DecodingEngine.Cached;
    /// <summary>See <see cref="DecodingOptions.AddSpecialTokens"/>: false when the prompts come from a chat template.</summary>
    public bool AddSpecialTokens { get; init; } = true;

    /// <summary>How each setting is named to the user in messages (CLI option names by default).</summary>
    public Func<MethodParameter, string> NameOf { get; init; } = CliName;

    public static string CliName(MethodParameter p) => p switch
    {
        MethodParameter.K => "-k",
        MethodParameter.W => "-w",
        MethodParameter.N => "-n",
        MethodParameter.Temperature => "--temperature",
        MethodParameter.TopP => "--top-p",
        MethodParameter.Continuations => "-K",
        MethodParameter.BlockLength => "-M",
        MethodParameter.TargetReward => "--target-reward",
        _ => p.ToString(),
    };

    public DecodingMethod ResolveMethod() => DecodingMethods.Parse(Method);

    /// <summary>Throws when the user gave a setting the method does not read.</summary>
    public DecodingMethod CheckSettings()
    {
        var method = ResolveMethod();
        foreach (var unread in method.Unread(Settings))
        {
            string why = unread == MethodParameter.Temperature && !method.Samples ? "it does not sample"
                : $"only {string.Join(", ", DecodingMethods.All.Where(m => m.Reads(unread)).Select(m => m.Name))} read it";
            throw new PargsException($"{NameOf(unread)} has no effect with --method {method.Name} ({why})");
        }
        return method;
    }

    /// <summary>The options for a model with these generation defaults (null: none), validated for <paramref name="vocabSize"/>.</summary>
    public DecodingOptions Resolve(GenerationDefaults? defaults, int vocabSize, string defaultsSource = "generation_config.json")
    {
        var method = CheckSettings();
        var s = Settings;
        if (defaults is not null)
        {
            if (s.Temperature is null && defaults.Temperature is { } t && method.Reads(MethodParameter.Temperature))
            {
                if (!(t > 0) || !double.IsFinite(t)) throw new PargsException($"{defaultsSource}: temperature must be positive for {method.Name}, got {t} (or pass --temperature)");
                s = s with { Temperature = t };
            }
            if (s.K is null && defaults.TopK is { } topK && topK > 0 && method.Reads(MethodParameter.K)) s = s with { K = Math.Min(topK, vocabSize) };
            if (s.TopP is null && defaults.TopP is { } p && method.Reads(MethodParameter.TopP))
            {
                if (!(p > 0 && p <= 1)) throw new PargsException($"{defaultsSource}: top_p must be in (0, 1], got {p} (or pass --top-p)");
                s = s with { TopP = p };
            }
        }
        int maxNew = MaxNewTokens ?? (defaults?.MaxNewTokens is { } m && m > 0 ? m : 64);
        return new DecodingOptions
        {
            Method = method.Options(s),
            Seed = Seed,
            MaxNewTokens = maxNew,
            StopStrings = StopStrings,
            StopAtEos = StopAtEos,
            BatchSize = BatchSize,
            Decoders = Decoders,
            Engine = Engine,
            AddSpecialTokens = AddSpecialTokens,
        }.Validate(vocabSize);
    }

    /// <summary>
    /// The reward model a request decodes with when it names none: on the shipped default model, guided methods
    /// use the shipped partial RM (trained by <c>pargs demo</c>); elsewhere a guided method needs one.
    /// </summary>
    public static string? DefaultRewardModel(DecodingMethod method, bool onShippedModel)
    {
        if (!method.NeedsRewardModel) return null;
        if (onShippedModel) return ShippedData.Find(ShippedData.PartialRewardModel);
        throw new PargsException($"--method {method.Name} needs --reward-model DIR");
    }
}
