using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Pargs.Models.Cpu;

/// <summary>
/// <see cref="CpuGemm"/>'s weight panels packed once and kept, for the matrices of one model whose weights cannot change
/// (a server's, a generation's: held for inference only). WHY: <see cref="CpuGemm.Multiply"/> packs w into [in, 32] panels
/// at every call, ~25–30 % of its time at 110–160 rows on the 15M shape, and a reward step split by rows over two threads
/// packed every matrix twice (once per half). Kept panels are the same floats in the same places as a per-call pack, so
/// every output is the same fma chain and the same bits (tested).
/// <para>
/// Explicit, never keyed by address alone: TorchSharp has no version counter and training updates weights in place, so a
/// cache of any tensor's panels could serve stale weights. Only a model marked with <see cref="MarkInferenceOnly"/> (where
/// the server takes ownership of its models; training paths never mark) gets panels, owned by that model (a weak table
/// keyed by its backbone: they go with it) and released with <see cref="Release"/> when its owner disposes it. A marked
/// model whose weights change anyway is caught at the next product by a sampled comparison of panel and weights, and
/// refused rather than multiplied with stale panels.
/// </para>
/// <para>
/// Memory: one float per weight of each matrix <see cref="CpuGemm"/> takes (≤ 4 MiB each: the layers' projections),
/// outputs rounded up to 32 — 24 MB for the 15M shape (6 layers × 4 MB) —, and, when PARGS_KEPT_HEAD_MIB allows it
/// (<see cref="MaxHeadBytes"/>, off by default), of a causal LM's head (the 15M shape's 32,000 × 288: 35.2 MiB, a copy of
/// the embedding it is tied to), packed lazily at a matrix's first many-row product. <see cref="Bytes"/> and
/// <see cref="HeadBytes"/> say how much.
/// </para>
/// </summary>
public sealed unsafe class KeptPanels
{
    static readonly ConditionalWeakTable<object, KeptPanels> Owners = new();

    /// <summary>
    /// Whether kept panels are used at all (PARGS_KEPT_PANELS=0 turns them off: per-call packs again, A/B runs of one build;
    /// the outputs are the same bits either way).
    /// </summary>
    public static bool Enabled { get; set; } = Environment.GetEnvironmentVariable("PARGS_KEPT_PANELS") != "0";

    readonly ConcurrentDictionary<(nint Weights, int InF, int OutF), float[]> panels = new();
    readonly object packing = new();
    long bytes;

    /// <summary>Bytes the panels packed so far hold.</summary>
    public long Bytes => Interlocked.Read(ref bytes);

    /// <summary>Matrices packed so far.</summary>
    public int Matrices => panels.Count;

    /// <summary>Of <see cref="Bytes"/>, what LM heads' panels hold (<see cref="KeepsHead"/>).</summary>
    public long HeadBytes => Interlocked.Read(ref headBytes);
    long headBytes;
    // The heads' weights (keys of `panels`) whose panels count in headBytes.
    readonly ConcurrentDictionary<(nint Weights, int InF, int OutF), bool> heads = new();

    /// <summary>
    /// The largest LM head (bytes of float32 weights) whose panels a marked model keeps (PARGS_KEPT_HEAD_MIB; default 0 = none:
    /// the head stays on the dot-product blocks). Off by default because it did not pay where it was measured: the 15M
    /// shape's 32,000 × 288 head (35.2 MiB of panels, a second copy of the embedding it is tied to) ran 1.2–1.3× faster over
    /// kept panels in `bench gemm` at 12–16 rows, but a 16-stream step's LmStep was level with the dot blocks (bench serve and
    /// bench gemm's LM-step table, alternated, load 16–27: docs/benchmarks.md, s14-lmhead) — at 12–16 rows the step streams
    /// ~60 MB of weights (head and layers' panels) from memory whichever kernel reads them. Kept as the switch for a quieter
    /// machine's A/B (PARGS_KEPT_HEAD_MIB=64 takes the 15M shape's head; a 0.5B model's 151,936 × 896, 519 MiB, is never copied
    /// under any budget this size).
    /// </summary>
    public static long MaxHeadBytes { get; set; } = TuningVariable.Read("PARGS_KEPT_HEAD_MIB", 0, 0, 1L << 20) << 20;

    /// <summary>Whether this model's LM head [<paramref name="vocab"/>, <paramref name="hidden"/>] keeps its panels (see <see cref="MaxHeadBytes"/>).</summary>
    public bool KeepsHead(long vocab, long hidden) => vocab * hidden * sizeof(float) <= MaxHeadBytes;

    /// <summary>
    /// Marks <paramref name="model"/> (a backbone whose decode kernel reads its module's float32 tensors) as held for
    /// inference only: its kernels' many-row products keep their weight panels. Returns its panels.
    /// </summary>
    public static KeptPanels MarkInferenceOnly(object model) => Owners.GetValue(model, _ => new KeptPanels());

    /// <summary>The panels of <paramref name="model"/> when it was marked, else null.</summary>
    public static KeptPanels? Of(object model) => Owners.TryGetValue(model, out var kept) ? kept : null;

    /// <summary>Drops <paramref name="model"/>'s mark and its panels (its owner disposes it).</summary>
    public static void Release(object model)
    {
        if (Owners.TryGetValue(model, out var kept))
        {
            Owners.Remove(model);
            kept.panels.Clear();
            kept.heads.Clear();
            Interlocked.Exchange(ref kept.bytes, 0);
            Interlocked.Exchange(ref kept.headBytes, 0);
        }
    }

    /// <summary>
    /// The panels of w [outF, inF] (⌈outF / 32⌉ panels of [inF, 32], panel p holding outputs 32p … 32p + 31), packed at the
    /// first call. Throws when w no longer matches them (a marked model's weights changed).
    /// </summary>
    internal float* For(float* w, int inF, int outF, bool head = false)
    {
        var key = ((nint)w, inF, outF);
        if (!panels.TryGetValue(key, out var packed))
            lock (packing)
                if (!panels.TryGetValue(key, out packed))
                {
                    long floats = (long)(outF + CpuGemm.PanelWidth - 1) / CpuGemm.PanelWidth * CpuGemm.PanelWidth * inF;
                    packed = GC.AllocateUninitializedArray<float>(checked((int)floats + CpuGemm.AlignFloats), pinned: true);
                    CpuGemm.PackPanels(w, inF, outF, CpuGemm.CacheLineAligned(packed));
                    panels[key] = packed;
                    Interlocked.Add(ref bytes, (long)packed.Length * sizeof(float));
                    if (head && heads.TryAdd(key, true)) Interlocked.Add(ref headBytes, (long)packed.Length * sizeof(float));
                }
        float* p = CpuGemm.CacheLineAligned(packed); // pinned: the address stays valid
        CheckUnchanged(w, inF, outF, p);
        return p;
    }

    /// <summary>
    /// A few of w's floats against their places in the panels (first, last and two between): an optimizer step or a
    /// reload changes every weight, so a marked model trained or reloaded in place is refused at its next product
    /// instead of multiplied with its old panels.
    /// </summary>
    static void CheckUnchanged(float* w, int inF, int outF, float* panels)
    {
        for (int s = 0; s < 4; s++)
        {
            int o = (int)((long)(outF - 1) * s / 3), i = (int)((long)(inF - 1) * (3 - s) / 3);
            float panel = panels[(long)(o / CpuGemm.PanelWidth) * inF * CpuGemm.PanelWidth + (long)i * CpuGemm.PanelWidth + o % CpuGemm.PanelWidth];
            if (BitConverter.SingleToInt32Bits(panel) != BitConverter.SingleToInt32Bits(w[(long)o * inF + i]))
                throw new InvalidOperationException($"a model marked inference-only (KeptPanels) had its weights [{outF}, {inF}] changed in place; its kept panels would be stale");
        }
    }
}
