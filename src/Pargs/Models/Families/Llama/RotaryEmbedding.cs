using TorchSharp;
using static TorchSharp.torch;

namespace Pargs.Models.Families.Llama;

/// <summary>
/// Rotary position embeddings in Hugging Face's "rotate half" convention: dimension i pairs with i + D/2.
/// Checkpoints in Meta's interleaved-pairs layout (GGUF, llama2.c) have their q/k weights permuted at load
/// time, so there is one code path at run time. Tables are precomputed for every position, with the config's
/// frequency scaling (<see cref="RopeScaling"/>) and its attention factor folded into cos and sin, as
/// transformers does. LongRoPE has a second pair of tables for forwards that reach past the pre-training
/// context; dynamic NTK only differs from the default past max_position_embeddings, which is also the context
/// Pargs allows, so its tables are the default ones.
/// </summary>
public sealed class RotaryEmbedding : IDisposable
{
    // [rows, D] (rows = maxPositions unless tabulated lazily). signedSin = sin with its first half negated, so that
    // rotate_half(x)·sin becomes roll(x, D/2)·signedSin: one op instead of narrow/neg/narrow/cat
    // (rotate_half(x) = [−x₂, x₁], roll = [x₂, x₁]). Null in host mode (see Host), whose tables are pinned arrays.
    Tensor cos = null!, signedSin = null!;
    float[]? hostCos, hostSignedSin;
    readonly List<float[]> outgrownHost = [];
    readonly Tensor? longCos, longSignedSin;
    readonly int longFrom; // sequence length from which the long tables apply (LongRoPE), else int.MaxValue
    // Lazy tabulation (decode-only models): the rows tabulated so far, and the settings to tabulate more. Outgrown
    // tables stay alive until Dispose, so a kernel still holding their address on another thread reads valid memory.
    readonly int headDim, maxPositions;
    readonly double theta;
    readonly RopeScaling? scaling;
    readonly List<Tensor> outgrown = [];
    readonly object growing = new();
    int rows;

    /// <summary>The tables [maxPositions, D] themselves, for <see cref="LlamaDecodeKernel"/> (not in host mode).</summary>
    internal Tensor CosTable => cos ?? throw new InvalidOperationException("host-mode rotary tables are arrays (TablePointers)");
    internal Tensor SignedSinTable => signedSin ?? throw new InvalidOperationException("host-mode rotary tables are arrays (TablePointers)");

    /// <summary>The tables' width: the rotated dimensions of a head.</summary>
    public int Dims => headDim;

    public RotaryEmbedding(int headDim, int maxPositions, double theta) : this(headDim, maxPositions, theta, null) { }

    /// <summary>
    /// With <paramref name="initialRows"/>, only that many positions are tabulated at first and the tables grow (doubling)
    /// as <see cref="TablesFor"/> is asked for longer sequences. WHY: at a 131,072-position context (Llama 3) the full
    /// tables are 64 MiB — a quarter-GB while built in float64 — for a decode that reaches a few thousand positions.
    /// Row p of a grown table is the same value as in the full one (the frequencies depend on the context, not on how
    /// many rows are tabulated). LongRoPE always tabulates everything (two table pairs switched by length).
    /// </summary>
    public RotaryEmbedding(int headDim, int maxPositions, double theta, RopeScaling? scaling, int? initialRows = null)
    {
        (this.headDim, this.maxPositions, this.theta, this.scaling) = (headDim, maxPositions, theta, scaling);
        // LongRoPE: the main tables use the short factors (sequences within the pre-training context), the long
        // tables the long factors; every other type's tables are fixed (dynamic: see the class comment).
        int original = scaling is { Type: "longrope" } ? scaling.OriginalMaxPositions ?? maxPositions : maxPositions;
        rows = initialRows is int initial && original == maxPositions ? Math.Clamp(initial, 1, maxPositions) : maxPositions;
        (cos, signedSin) = Tables(headDim, maxPositions, theta, scaling, sequenceLength: original, rows);
        longFrom = int.MaxValue;
        if (original < maxPositions)
        {
            (longCos, longSignedSin) = Tables(headDim, maxPositions, theta, scaling, sequenceLength: original + 1, maxPositions);
            longFrom = original + 1;
        }
    }

    /// <summary>
    /// Host mode: the tables as pinned float32 arrays computed on the host, tabulated lazily from <paramref name="initialRows"/>
    /// positions and growing as <see cref="TablesFor"/>'s do. WHY: a model decoded in its stored precision
    /// (<see cref="LlamaStoredBackbone"/>, <see cref="Engine.HostLanguageModel"/>) reads its tables only through
    /// <see cref="LlamaDecodeKernel"/>; torch tables would load libtorch (~75 MiB resident) for two small arrays.
    /// The same double-precision arithmetic as the torch tables (p · inv_freq, cos/sin, × attention factor, then float32);
    /// they may differ from torch's in the last float32 bit where torch's vectorized cos rounds differently. LongRoPE
    /// (two table pairs switched by length) is not tabulated here: callers check <see cref="HostTabulates"/>.
    /// </summary>
    public static RotaryEmbedding Host(int headDim, int maxPositions, double theta, RopeScaling? scaling, int initialRows)
    {
        if (!HostTabulates(scaling)) throw new ArgumentException("LongRoPE tables are tabulated by torch", nameof(scaling));
        return new RotaryEmbedding(headDim, maxPositions, theta, scaling, initialRows, host: true);
    }

    /// <summary>Whether <see cref="Host"/> tabulates this scaling (every type but LongRoPE's two table pairs).</summary>
    public static bool HostTabulates(RopeScaling? scaling) => scaling is not { Type: "longrope" };

    RotaryEmbedding(int headDim, int maxPositions, double theta, RopeScaling? scaling, int initialRows, bool host)
    {
        (this.headDim, this.maxPositions, this.theta, this.scaling) = (headDim, maxPositions, theta, scaling);
        rows = Math.Clamp(initialRows, 1, maxPositions);
        longFrom = int.MaxValue;
        (hostCos, hostSignedSin) = HostTables(headDim, maxPositions, theta, scaling, rows);
    }

    static (float[] Cos, float[] SignedSin) HostTables(int headDim, int maxPositions, double theta, RopeScaling? scaling, int rows)
    {
        var (inverse, attentionFactor) = RopeScaling.Frequencies(scaling, headDim, theta, maxPositions, maxPositions);
        int half = headDim / 2;
        var cosTable = GC.AllocateUninitializedArray<float>(rows * headDim, pinned: true);
        var sinTable = GC.AllocateUninitializedArray<float>(rows * headDim, pinned: true);
        for (int p = 0; p < rows; p++)
            for (int i = 0; i < headDim; i++)
            {
                double angle = (double)p * inverse[i % half]; // emb = cat(freqs, freqs)
                cosTable[p * headDim + i] = (float)(Math.Cos(angle) * attentionFactor);
                sinTable[p * headDim + i] = (float)(Math.Sin(angle) * (i < half ? -1.0 : 1.0) * attentionFactor);
            }
        return (cosTable, sinTable);
    }

    /// <summary>
    /// The tables' addresses for a forward whose longest row reaches <paramref name="sequenceLength"/> positions, in either
    /// mode (see <see cref="TablesFor"/>). Host arrays are pinned and outgrown ones kept until the embedding is dropped.
    /// </summary>
    internal unsafe void TablePointers(long sequenceLength, out float* cosTable, out float* signedSinTable)
    {
        if (hostCos is null)
        {
            var (c, s) = TablesFor(sequenceLength);
            cosTable = Pargs.Models.Cpu.TensorMemory.Floats(c);
            signedSinTable = Pargs.Models.Cpu.TensorMemory.Floats(s);
            return;
        }
        if (sequenceLength > rows) Grow(sequenceLength);
        lock (growing)
        {
            cosTable = (float*)System.Runtime.CompilerServices.Unsafe.AsPointer(ref System.Runtime.InteropServices.MemoryMarshal.GetArrayDataReference(hostCos));
            signedSinTable = (float*)System.Runtime.CompilerServices.Unsafe.AsPointer(ref System.Runtime.InteropServices.MemoryMarshal.GetArrayDataReference(hostSignedSin!));
        }
    }

    /// <summary>
    /// Rows [<paramref name="from"/>, from + <paramref name="count"/>) of the cos and signed-sin tables as host arrays [count · D],
    /// in either mode (growing lazily tabulated tables as a forward reaching from + count positions would). WHY public: the
    /// host tables are checked against torch's (tests), which no forward can show when both sessions use the host tables.
    /// </summary>
    public unsafe (float[] Cos, float[] SignedSin) TableRows(int from, int count)
    {
        if (from < 0 || count < 0 || from + count > maxPositions) throw new ArgumentOutOfRangeException(nameof(count), $"rows {from}..{from + count} of {maxPositions}");
        if (hostCos is null)
        {
            var (c, s) = TablesFor(from + count);
            using var cosRows = c.narrow(0, from, count).contiguous();
            using var sinRows = s.narrow(0, from, count).contiguous();
            return (cosRows.data<float>().ToArray(), sinRows.data<float>().ToArray());
        }
        TablePointers(from + count, out var cosTable, out var sinTable);
        return (new ReadOnlySpan<float>(cosTable + (long)from * headDim, count * headDim).ToArray(),
                new ReadOnlySpan<float>(sinTable + (long)from * headDim, count * headDim).ToArray());
    }

    static (Tensor Cos, Tensor SignedSin) Tables(int headDim, int maxPositions, double theta, RopeScaling? scaling, long sequenceLength, int rows)
    {
        using var scope = NewDisposeScope();
        var (inverse, attentionFactor) = RopeScaling.Frequencies(scaling, headDim, theta, maxPositions, sequenceLength);
        var invFreq = tensor(inverse, dtype: ScalarType.Float64);
        var freqs = outer(HeldScalars.Arange(rows, ScalarType.Float64), invFreq);
        var emb = cat(new[] { freqs, freqs }, 1);
        var sign = cat(new[] { -ones(headDim / 2, dtype: ScalarType.Float64), ones(headDim / 2, dtype: ScalarType.Float64) });
        // An explicit Scalar held across its calls: TorchSharp frees an implicit Scalar in its finalizer and keeps no reference to it across the native call, so a collection during the call can free what libtorch reads ("Unknown scalar type").
        using var factor = attentionFactor.ToScalar();
        // The tables belong to this embedding (freed by Dispose, outgrown ones kept until then), not to whatever scope
        // the caller has open: a forward's scope would free tables it grew, a scope around a model's construction its tables.
        return ((emb.cos() * factor).to(ScalarType.Float32).DetachFromDisposeScope(),
                (emb.sin() * sign * factor).to(ScalarType.Float32).DetachFromDisposeScope());
    }

    /// <summary>
    /// The tables for a forward whose longest row reaches <paramref name="sequenceLength"/> positions (max position + 1):
    /// the long LongRoPE tables past the pre-training context, else the main ones.
    /// </summary>
    internal (Tensor Cos, Tensor SignedSin) TablesFor(long sequenceLength)
    {
        if (hostCos is not null) throw new InvalidOperationException("host-mode rotary tables are arrays (TablePointers)");
        if (sequenceLength >= longFrom) return (longCos!, longSignedSin!);
        if (sequenceLength > rows) Grow(sequenceLength);
        return (cos, signedSin);
    }

    /// <summary>Positions tabulated so far (all of them unless built with initialRows).</summary>
    public int TabulatedPositions => rows;

    void Grow(long sequenceLength)
    {
        lock (growing)
        {
            if (sequenceLength <= rows) return;
            int grown = (int)Math.Min(maxPositions, Math.Max(sequenceLength, 2L * rows));
            if (hostCos is not null)
            {
                var (grownCos, grownSin) = HostTables(headDim, maxPositions, theta, scaling, grown);
                outgrownHost.Add(hostCos);
                outgrownHost.Add(hostSignedSin!);
                (hostCos, hostSignedSin, rows) = (grownCos, grownSin, grown);
                return;
            }
            var (newCos, newSin) = Tables(headDim, maxPositions, theta, scaling, sequenceLength: maxPositions, grown);
            outgrown.Add(cos);
            outgrown.Add(signedSin);
            (cos, signedSin, rows) = (newCos, newSin, grown);
        }
    }

    /// <summary>cos and signed sin for <paramref name="positions"/> [B, T], shaped [B, 1, T, D] to broadcast over heads.</summary>
    public (Tensor Cos, Tensor SignedSin) At(Tensor positions)
    {
        var flat = positions.reshape(-1);
        long b = positions.shape[0], t = positions.shape[1];
        var (c, s) = longFrom == int.MaxValue && rows == maxPositions ? (cos, signedSin) : TablesFor(flat.max().item<long>() + 1);
        return (c.index_select(0, flat).view(b, 1, t, -1), s.index_select(0, flat).view(b, 1, t, -1));
    }

    /// <summary>x·cos + rotate_half(x)·sin for x [B, heads, T, D], given the signed sin of <see cref="At"/>.</summary>
    public static Tensor Apply(Tensor x, Tensor cos, Tensor signedSin)
        => (x * cos).Plus(x.roll(x.shape[3] / 2, 3) * signedSin);

    public void Dispose()
    {
        foreach (var t in outgrown) t.Dispose();
        cos?.Dispose();
        signedSin?.Dispose();
        longCos?.Dispose();
        longSignedSin?.Dispose();
    }
}
