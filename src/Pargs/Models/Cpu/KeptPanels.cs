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
/// Memory: one float per weight of each matrix <see cref="CpuGemm"/> takes (≤ 4 MiB each: the layers' projections, not an
/// LM head or embedding), outputs rounded up to 32 — 24 MB for the 15M shape (6 layers × 4 MB), packed lazily at a
/// matrix's first many-row product. <see cref="Bytes"/> says how much.
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
            Interlocked.Exchange(ref kept.bytes, 0);
        }
    }

    /// <summary>
    /// The panels of w [outF, inF] (⌈outF / 32⌉ panels of [inF, 32], panel p holding outputs 32p … 32p + 31), packed at the
    /// first call. Throws when w no longer matches them (a marked model's weights changed).
    /// </summary>
    internal float* For(float* w, int inF, int outF)
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
