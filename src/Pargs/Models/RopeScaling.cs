using System.Text.Json;
using System.Text.Json.Nodes;
using Pargs.Models.Families;

namespace Pargs.Models;

/// <summary>
/// How a rotary family's frequencies are scaled, as config.json states it in either form transformers reads:
/// <c>"rope_scaling": {"rope_type" (or the older "type"): …, …}</c> beside <c>rope_theta</c>, or the newer
/// <c>"rope_parameters": {"rope_theta": …, "rope_type": …, …}</c>. Implemented types: default, linear, dynamic
/// (NTK), llama3, yarn and longrope, each as transformers' <c>modeling_rope_utils</c> computes it (inverse
/// frequencies, and the attention factor that multiplies cos and sin). Any other type, or a key the type does
/// not use, is refused with a line naming it.
/// </summary>
public sealed record RopeScaling
{
    public string Type { get; init; } = "default";
    public double? Factor { get; init; }
    /// <summary>The pre-training context (llama3, yarn, longrope): where interpolation starts.</summary>
    public int? OriginalMaxPositions { get; init; }
    public double? LowFreqFactor { get; init; }
    public double? HighFreqFactor { get; init; }
    public double? AttentionFactor { get; init; }
    public double? BetaFast { get; init; }
    public double? BetaSlow { get; init; }
    public double? Mscale { get; init; }
    public double? MscaleAllDim { get; init; }
    public bool Truncate { get; init; } = true;
    public ValueList<double>? ShortFactor { get; init; }
    public ValueList<double>? LongFactor { get; init; }

    public static readonly string[] Types = ["default", "linear", "dynamic", "llama3", "yarn", "longrope"];

    static readonly Dictionary<string, string[]> KeysByType = new()
    {
        ["default"] = [],
        ["linear"] = ["factor"],
        ["dynamic"] = ["factor", "original_max_position_embeddings"],
        ["llama3"] = ["factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings"],
        ["yarn"] = ["factor", "original_max_position_embeddings", "attention_factor", "beta_fast", "beta_slow", "mscale", "mscale_all_dim", "truncate"],
        ["longrope"] = ["factor", "original_max_position_embeddings", "attention_factor", "short_factor", "long_factor"],
    };

    /// <summary>True when the frequencies depend on the length of the sequence being run (transformers' dynamic_rope_update).</summary>
    public bool DependsOnLength => Type is "dynamic" or "longrope";

    /// <summary>
    /// Reads rope_theta and the scaling from <paramref name="c"/> (either form). Returns theta and the scaling
    /// (null = default rotary). <paramref name="modelType"/> names the model in refusals.
    /// </summary>
    public static (double Theta, RopeScaling? Scaling) Read(ConfigJson c, string modelType, double defaultTheta)
    {
        double theta = c.Double("rope_theta", defaultTheta);
        RopeScaling? scaling = null;
        if (c.Has("rope_parameters"))
        {
            if (c.Json["rope_parameters"] is not JsonObject parameters)
                throw c.Error($"field \"rope_parameters\" must be an object, got {c.Json["rope_parameters"]!.ToJsonString()}");
            if (parameters.Any(p => p.Value is JsonObject))
                throw c.Error($"config field \"rope_parameters\" = {parameters.ToJsonString()} (one set per layer type) is not supported for model_type \"{modelType}\"");
            var inner = new ConfigJson(parameters, c.Source + " rope_parameters");
            theta = inner.Double("rope_theta", theta);
            scaling = Parse(inner, "rope_parameters", modelType, allowed: ["rope_theta", "partial_rotary_factor"]);
            if (inner.Has("partial_rotary_factor") && inner.Double("partial_rotary_factor", 1.0) != 1.0)
                throw c.Error($"config field \"rope_parameters.partial_rotary_factor\" = {inner.Json["partial_rotary_factor"]!.ToJsonString()} is not supported for model_type \"{modelType}\"");
        }
        if (c.Has("rope_scaling"))
        {
            if (c.Json["rope_scaling"] is not JsonObject legacy)
                throw c.Error($"field \"rope_scaling\" must be an object or null, got {c.Json["rope_scaling"]!.ToJsonString()}");
            var fromLegacy = Parse(new ConfigJson(legacy, c.Source + " rope_scaling"), "rope_scaling", modelType, allowed: []);
            // Both forms present: they must say the same (transformers' conversion copies one into the other).
            if (scaling is not null && !Equals(scaling, fromLegacy))
                throw c.Error($"config fields \"rope_scaling\" = {legacy.ToJsonString()} and \"rope_parameters\" disagree for model_type \"{modelType}\"");
            scaling = fromLegacy;
        }
        // Phi-3 style: the pre-training context at the top level of config.json (transformers moves it in).
        if (scaling is { Type: "longrope" or "yarn", OriginalMaxPositions: null } && c.OptionalInt("original_max_position_embeddings") is { } topLevel)
            scaling = scaling with { OriginalMaxPositions = topLevel };
        if (theta <= 0) throw c.Error($"rope_theta must be positive, got {theta}");
        return (theta, scaling is { Type: "default" } ? null : scaling);
    }

    static RopeScaling Parse(ConfigJson c, string field, string modelType, string[] allowed)
    {
        string type = c.String("rope_type") ?? c.String("type")
            ?? throw c.Error($"\"{field}\" has no \"rope_type\"");
        if (!KeysByType.TryGetValue(type, out var keys))
            throw c.Error($"config field \"{field}.rope_type\" = \"{type}\" is not supported for model_type \"{modelType}\" (Pargs implements {string.Join(", ", Types)})");
        foreach (var (key, value) in c.Json)
            if (key is not ("rope_type" or "type") && !keys.Contains(key) && !allowed.Contains(key) && value is not null)
                throw c.Error($"config field \"{field}.{key}\" = {value.ToJsonString()} is not supported with rope_type \"{type}\" for model_type \"{modelType}\"");
        double? Num(string key) => c.Has(key) ? c.Double(key, 0) : null;
        ValueList<double>? List(string key)
        {
            if (!c.Has(key)) return null;
            try { return new ValueList<double>(((JsonArray)c.Json[key]!).Select(n => n!.GetValue<double>())); }
            catch (Exception) { throw c.Error($"field \"{field}.{key}\" must be a list of numbers"); }
        }
        var scaling = new RopeScaling
        {
            Type = type,
            Factor = Num("factor"),
            OriginalMaxPositions = c.OptionalInt("original_max_position_embeddings"),
            LowFreqFactor = Num("low_freq_factor"),
            HighFreqFactor = Num("high_freq_factor"),
            AttentionFactor = Num("attention_factor"),
            BetaFast = Num("beta_fast"),
            BetaSlow = Num("beta_slow"),
            Mscale = Num("mscale"),
            MscaleAllDim = Num("mscale_all_dim"),
            Truncate = c.Bool("truncate", true),
            ShortFactor = List("short_factor"),
            LongFactor = List("long_factor"),
        };
        void Require(bool ok, string what)
        {
            if (!ok) throw c.Error($"\"{field}\" with rope_type \"{type}\" needs {what}");
        }
        foreach (var (key, value) in new[] { ("factor", scaling.Factor), ("attention_factor", scaling.AttentionFactor), ("beta_fast", scaling.BetaFast), ("beta_slow", scaling.BetaSlow) })
            if (value is { } v && !(v > 0 && double.IsFinite(v))) throw c.Error($"\"{field}.{key}\" must be a positive number, got {v}");
        if (scaling.OriginalMaxPositions is <= 0) throw c.Error($"\"{field}.original_max_position_embeddings\" must be positive, got {scaling.OriginalMaxPositions}");
        foreach (var (key, list) in new[] { ("short_factor", scaling.ShortFactor), ("long_factor", scaling.LongFactor) })
            if (list is not null && list.Any(v => !(v > 0 && double.IsFinite(v)))) throw c.Error($"\"{field}.{key}\" must hold positive numbers");
        switch (type)
        {
            case "linear" or "dynamic":
                Require(scaling.Factor is > 0, "a positive \"factor\"");
                break;
            case "llama3":
                Require(scaling.Factor is > 0, "a positive \"factor\"");
                Require(scaling.LowFreqFactor is not null && scaling.HighFreqFactor is not null && scaling.HighFreqFactor > scaling.LowFreqFactor,
                    "\"low_freq_factor\" < \"high_freq_factor\"");
                Require(scaling.OriginalMaxPositions is > 0, "\"original_max_position_embeddings\"");
                break;
            case "longrope":
                Require(scaling.ShortFactor is not null && scaling.LongFactor is not null, "\"short_factor\" and \"long_factor\"");
                break;
        }
        return scaling;
    }

    /// <summary>The scaling as config.json's <c>rope_scaling</c> object.</summary>
    public JsonObject ToJson()
    {
        var json = new JsonObject { ["rope_type"] = Type };
        void Put(string key, double? value) { if (value is { } v) json[key] = v; }
        Put("factor", Factor);
        if (OriginalMaxPositions is { } o) json["original_max_position_embeddings"] = o;
        Put("low_freq_factor", LowFreqFactor);
        Put("high_freq_factor", HighFreqFactor);
        Put("attention_factor", AttentionFactor);
        Put("beta_fast", BetaFast);
        Put("beta_slow", BetaSlow);
        Put("mscale", Mscale);
        Put("mscale_all_dim", MscaleAllDim);
        if (!Truncate) json["truncate"] = false;
        if (ShortFactor is { } s) json["short_factor"] = new JsonArray(s.Select(v => (JsonNode?)v).ToArray());
        if (LongFactor is { } l) json["long_factor"] = new JsonArray(l.Select(v => (JsonNode?)v).ToArray());
        return json;
    }

    /// <summary>
    /// The inverse frequencies [dim/2] and the factor cos/sin are multiplied by, for a forward whose longest row
    /// reaches <paramref name="sequenceLength"/> positions (only dynamic and longrope depend on it).
    /// <paramref name="maxPositions"/> is config.json's max_position_embeddings.
    /// </summary>
    public static (double[] InverseFrequencies, double AttentionFactor) Frequencies(RopeScaling? scaling, int dim, double theta, int maxPositions, long sequenceLength)
    {
        double[] Default(double baseTheta) => Enumerable.Range(0, dim / 2).Select(i => 1.0 / Math.Pow(baseTheta, 2.0 * i / dim)).ToArray();
        if (scaling is null || scaling.Type == "default") return (Default(theta), 1.0);
        switch (scaling.Type)
        {
            case "linear":
                return (Default(theta).Select(f => f / scaling.Factor!.Value).ToArray(), 1.0);
            case "dynamic":
            {
                // NTK-aware: the base grows with the sequence once it passes max_position_embeddings.
                if (sequenceLength <= maxPositions) return (Default(theta), 1.0);
                double factor = scaling.Factor!.Value;
                double grown = theta * Math.Pow(factor * sequenceLength / maxPositions - (factor - 1), dim / (dim - 2.0));
                return (Default(grown), 1.0);
            }
            case "llama3":
            {
                double factor = scaling.Factor!.Value, low = scaling.LowFreqFactor!.Value, high = scaling.HighFreqFactor!.Value;
                double old = scaling.OriginalMaxPositions!.Value;
                double lowWavelength = old / low, highWavelength = old / high;
                return (Default(theta).Select(f =>
                {
                    double wavelength = 2 * Math.PI / f;
                    if (wavelength < highWavelength) return f;          // high frequencies: unchanged
                    if (wavelength > lowWavelength) return f / factor;  // low frequencies: interpolated
                    double smooth = (old / wavelength - low) / (high - low);
                    return (1 - smooth) * f / factor + smooth * f;
                }).ToArray(), 1.0);
            }
            case "yarn":
            {
                int original = scaling.OriginalMaxPositions ?? maxPositions;
                double factor = scaling.Factor ?? (double)maxPositions / original;
                static double MagnitudeScale(double scale, double m) => scale <= 1 ? 1.0 : 0.1 * m * Math.Log(scale) + 1.0;
                double attention = scaling.AttentionFactor
                    ?? (scaling.Mscale is { } ms && ms != 0 && scaling.MscaleAllDim is { } msa && msa != 0
                        ? MagnitudeScale(factor, ms) / MagnitudeScale(factor, msa)
                        : MagnitudeScale(factor, 1));
                double betaFast = scaling.BetaFast is { } bf && bf != 0 ? bf : 32, betaSlow = scaling.BetaSlow is { } bs && bs != 0 ? bs : 1;
                double CorrectionDim(double rotations) => dim * Math.Log(original / (rotations * 2 * Math.PI)) / (2 * Math.Log(theta));
                double lo = CorrectionDim(betaFast), hi = CorrectionDim(betaSlow);
                if (scaling.Truncate) { lo = Math.Floor(lo); hi = Math.Ceiling(hi); }
                lo = Math.Max(lo, 0);
                hi = Math.Min(hi, dim - 1);
                if (lo == hi) hi += 0.001; // as transformers: no division by zero
                var inv = new double[dim / 2];
                for (int i = 0; i < dim / 2; i++)
                {
                    double extrapolation = 1.0 / Math.Pow(theta, 2.0 * i / dim), interpolation = extrapolation / factor;
                    double ramp = Math.Clamp((i - lo) / (hi - lo), 0, 1);
                    double keep = 1 - ramp; // share of the unscaled (extrapolated) frequency
                    inv[i] = interpolation * (1 - keep) + extrapolation * keep;
                }
                return (inv, attention);
            }
            case "longrope":
            {
                int original = scaling.OriginalMaxPositions ?? maxPositions;
                double factor = scaling.Factor ?? (double)maxPositions / original;
                double attention = scaling.AttentionFactor ?? (factor <= 1 ? 1.0 : Math.Sqrt(1 + Math.Log(factor) / Math.Log(original)));
                var ext = sequenceLength > original ? scaling.LongFactor! : scaling.ShortFactor!;
                if (ext.Count != dim / 2)
                    throw new PargsException($"rope_scaling {(sequenceLength > original ? "long_factor" : "short_factor")} has {ext.Count} entries; the head dimension {dim} needs {dim / 2}");
                return (Enumerable.Range(0, dim / 2).Select(i => 1.0 / (ext[i] * Math.Pow(theta, 2.0 * i / dim))).ToArray(), attention);
            }
            default:
                throw new PargsException($"rope_type \"{scaling.Type}\" is not implemented");
        }
    }
}
