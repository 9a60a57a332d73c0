using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Pargs.Experiments;

/// <summary>
/// The receipt of one finished demo stage (<c>&lt;stage&gt;/manifest.json</c>): which inputs produced it
/// (<see cref="Fingerprint"/>: the stage's options plus the fingerprint of the stage before it), which files it
/// wrote, how long it took and a few summary numbers. A stage is skipped on a rerun only when its manifest exists,
/// its fingerprint matches and every listed file is still there; the manifest is written last, so an interrupted
/// stage simply runs again.
/// </summary>
public sealed record StageManifest
{
    public const string FileName = "manifest.json";

    [JsonPropertyName("stage")] public string Stage { get; init; } = "";
    [JsonPropertyName("fingerprint")] public string Fingerprint { get; init; } = "";
    /// <summary>Paths relative to the stage folder.</summary>
    [JsonPropertyName("files")] public IReadOnlyList<string> Files { get; init; } = [];
    [JsonPropertyName("seconds")] public double Seconds { get; init; }
    [JsonPropertyName("finished_utc")] public DateTime FinishedUtc { get; init; }
    [JsonPropertyName("summary")] public Dictionary<string, double> Summary { get; init; } = new();

    static readonly JsonSerializerOptions Json = new() { WriteIndented = true };

    /// <summary>The manifest of <paramref name="stageDir"/> if the stage is complete for <paramref name="fingerprint"/>, else null.</summary>
    public static StageManifest? ReadIfComplete(string stageDir, string fingerprint)
    {
        var path = Path.Combine(stageDir, FileName);
        if (!File.Exists(path)) return null;
        StageManifest? manifest;
        try { manifest = JsonSerializer.Deserialize<StageManifest>(File.ReadAllText(path)); }
        catch (JsonException) { return null; } // a damaged receipt: redo the stage
        if (manifest is null || manifest.Fingerprint != fingerprint) return null;
        return manifest.Files.All(f => File.Exists(Path.Combine(stageDir, f))) ? manifest : null;
    }

    public void Write(string stageDir)
    {
        var path = Path.Combine(stageDir, FileName);
        Pargs.IO.AtomicFile.WriteAllText(path, JsonSerializer.Serialize(this, Json) + "\n");
    }

    /// <summary>A short stable hash of the given values (their JSON), chained with the upstream fingerprint.</summary>
    public static string FingerprintOf(string upstream, object values)
    {
        var text = upstream + "|" + JsonSerializer.Serialize(values);
        var hash = System.Security.Cryptography.SHA256.HashData(Encoding.UTF8.GetBytes(text));
        return Convert.ToHexString(hash, 0, 8).ToLowerInvariant();
    }
}
