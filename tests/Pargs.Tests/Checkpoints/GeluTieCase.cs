using System.Text.Json.Nodes;
using Pargs.Checkpoints;
using Pargs.Models.Families.GptNeoX;
using Pargs.Tests.Models.Families;
using static TorchSharp.torch;

namespace Pargs.Tests.Checkpoints;

/// <summary>
/// One llama.cpp golden (tests/Pargs.Tests/Checkpoints/LlamaCppGoldens/&lt;name&gt;.json) and the float32 reference
/// forward of its checkpoint with ggml's float16 GELU table emulated (<see cref="TieFlippingGelu"/>): <see cref="Run"/>
/// resolves a set of float16 rounding ties the other way and says how far the result is from llama.cpp.
/// </summary>
sealed class GeluTieCase : IDisposable
{
    readonly TempDir dir = new();
    readonly CheckpointContents contents;
    readonly JsonObject json;
    readonly long[] tokens;
    readonly JsonArray logprobs;

    public string Name { get; }

    const long NoCollectionBytes = 64L << 20;

    public GeluTieCase(string name)
    {
        Name = name;
        var golden = JsonNode.Parse(File.ReadAllText(Path.Combine(TestPaths.RepoRoot, "tests", "Pargs.Tests", "Checkpoints", "LlamaCppGoldens", name + ".json")))!.AsObject();
        tokens = golden["tokens"]!.AsArray().Select(n => (long)n!.GetValue<int>()).ToArray();
        logprobs = golden["logprobs"]!.AsArray();
        string folder = dir.File(name);
        ReferenceCheckpoints.Write(name, folder);
        json = JsonNode.Parse(File.ReadAllText(Path.Combine(folder, HuggingFaceFolder.ConfigFile)))!.AsObject();
        contents = CheckpointLoader.Load(folder);
    }

    /// <summary>
    /// The emulated forward with the ties in <paramref name="flips"/> resolved to the other float16 neighbour: its
    /// log-probability gap to llama.cpp at each position (the worst over that position's golden tokens), and every GELU
    /// input's relative distance to its nearest float16 midpoint as this forward saw it (a flip in one layer moves the
    /// inputs of the next).
    /// </summary>
    public Resolution Run(IReadOnlySet<(int, int, int)> flips)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var distances = new Dictionary<(int, int, int), double>(capacity: 1 << 16);
        // A process-wide no-GC region around the forward, kept although this forward no longer needs it. WHY: TorchSharp
        // passes a Scalar to libtorch by handle and holds no reference across the call, so a collection mid-call lets
        // its finalizer free what libtorch reads ("Unknown scalar type" / Scalar.h toFloat). The reference forwards now
        // hold their Scalars (and the alpha 1 TorchSharp's + makes, HeldScalars.Plus): a loop of these forwards with another
        // thread collecting ran 60 s clean per case, where without it it crashed in ~12 s. But Pargs' own torch forwards
        // still add with TorchSharp's + (an unheld alpha in every residual, norm and bias sum), and this search's
        // allocation rate makes collections frequent: without the region the Gemma llama.cpp golden tests running in
        // parallel crashed in add's alpha (2 of 309 in the family filter). So the region stays until src holds that
        // alpha too. Its risks: it is process-wide (other tests' allocations count against the 64 MiB; past it the
        // region ends and the crash can return under load), and each TryStartNoGCRegion forces a full blocking
        // collection that pauses every test.
        bool noCollections = GC.TryStartNoGCRegion(NoCollectionBytes);
        Tensor logits;
        try { logits = Forward(new TieFlippingGelu(flips, distances).Apply); }
        finally { if (noCollections && System.Runtime.GCSettings.LatencyMode == System.Runtime.GCLatencyMode.NoGCRegion) GC.EndNoGCRegion(); }
        var rows = logits.to(ScalarType.Float64).log_softmax(-1).to(ScalarType.Float32);
        var gaps = new double[tokens.Length];
        for (int p = 0; p < tokens.Length; p++)
        {
            var ours = rows[p].data<float>().ToArray();
            var row = logprobs[p]!.AsArray();
            for (int t = 0; t < row.Count; t++)
                if (row[t] is { } g) gaps[p] = Math.Max(gaps[p], Math.Abs(ours[t] - g.GetValue<double>()));
        }
        return new Resolution(gaps, distances);
    }

    public sealed record Resolution(double[] Gaps, Dictionary<(int Layer, int Position, int Column), double> Distances)
    {
        public double WorstGap => Gaps.Max();
        public int WorstPosition => Array.IndexOf(Gaps, WorstGap);

        /// <summary>Whether every flip is within <paramref name="tieDistance"/> of a float16 midpoint in this forward.</summary>
        public bool AllTies(IEnumerable<(int, int, int)> flips, double tieDistance) =>
            flips.All(f => Distances.TryGetValue(f, out double d) && d <= tieDistance);
    }

    Tensor Forward(Func<Tensor, Tensor> gelu)
    {
        if (Name.StartsWith("gemma", StringComparison.Ordinal)) return GemmaReferenceForward.Logits(json, contents.Tensors, tokens, gelu);
        var config = contents.Config;
        var settings = GptNeoXSettings.Of(config);
        int dims = settings.RotaryDims(config);
        var inverse = Enumerable.Range(0, dims / 2).Select(i => Math.Pow(config.RopeTheta, -2.0 * i / dims)).ToArray();
        return Phi3GptNeoXReference.GptNeoX(config, contents.Tensors, tokens, dims, inverse, settings.UseParallelResidual, gelu);
    }

    public void Dispose()
    {
        contents.Dispose();
        dir.Dispose();
    }
}
