using System.Runtime.InteropServices;

namespace Pargs.Weights;

/// <summary>
/// A checkpoint's tensors in their stored precision under Hugging Face names, for inference: matrices are
/// <see cref="WeightMatrix"/> views into memory-mapped files (no copy: a bf16 safetensors weight stays 2 bytes,
/// a GGUF Q4_K block stays as stored), 1-D tensors (norms, biases: a few KB each) are decoded once to pinned
/// float32. Owns the mapped files: dispose after the last product.
/// </summary>
public sealed unsafe class StoredTensors : IDisposable
{
    readonly Dictionary<string, WeightMatrix> matrices = new(StringComparer.Ordinal);
    readonly Dictionary<string, float[]> vectors = new(StringComparer.Ordinal);
    readonly List<IDisposable> owned = [];

    public StoredTensors(string source) => Source = source;

    /// <summary>Where the tensors came from, for messages.</summary>
    public string Source { get; }

    /// <summary>Every tensor name, matrices and vectors.</summary>
    public IEnumerable<string> Names => matrices.Keys.Concat(vectors.Keys);

    public int Count => matrices.Count + vectors.Count;

    /// <summary>Bytes the tensors occupy as stored (matrices) or decoded (vectors).</summary>
    public long Bytes => matrices.Values.Sum(m => m.ByteLength) + vectors.Values.Sum(v => 4L * v.Length);

    /// <summary>Weights (elements) over all tensors.</summary>
    public long Elements => matrices.Values.Sum(m => (long)m.Rows * m.Cols) + vectors.Values.Sum(v => (long)v.Length);

    /// <summary>Keeps <paramref name="owner"/> (a mapped file) alive until this is disposed.</summary>
    public void Own(IDisposable owner) => owned.Add(owner);

    /// <summary>Adds a matrix; a name seen before is an error naming it.</summary>
    public void AddMatrix(string name, WeightMatrix matrix)
    {
        if (matrices.ContainsKey(name) || vectors.ContainsKey(name)) throw new PargsException($"{Source}: tensor \"{name}\" appears twice");
        matrices[name] = matrix;
    }

    /// <summary>Adds a 1-D tensor: <paramref name="stored"/> (one row) decoded to float32 now.</summary>
    public void AddVector(string name, WeightMatrix stored, int[]? order = null)
    {
        if (matrices.ContainsKey(name) || vectors.ContainsKey(name)) throw new PargsException($"{Source}: tensor \"{name}\" appears twice");
        if (stored.Rows != 1) throw new ArgumentException($"{name}: a vector is one row");
        var decoded = new float[stored.Cols];
        stored.DequantizeRow(0, decoded);
        var values = GC.AllocateUninitializedArray<float>(stored.Cols, pinned: true);
        for (int i = 0; i < values.Length; i++) values[i] = decoded[order is null ? i : order[i]];
        vectors[name] = values;
    }

    public bool Contains(string name) => matrices.ContainsKey(name) || vectors.ContainsKey(name);

    /// <summary>The shape as the checkpoint declares it: [rows, cols] for a matrix, [length] for a vector; null when absent.</summary>
    public long[]? Shape(string name)
        => matrices.TryGetValue(name, out var m) ? [m.Rows, m.Cols] : vectors.TryGetValue(name, out var v) ? [v.Length] : null;

    public WeightMatrix Matrix(string name)
        => matrices.TryGetValue(name, out var m) ? m : throw new PargsException($"{Source}: no matrix \"{name}\"");

    /// <summary>A vector's float32 values (pinned: the address stays valid while this lives).</summary>
    public float* Vector(string name)
        => vectors.TryGetValue(name, out var v) ? (float*)Marshal.UnsafeAddrOfPinnedArrayElement(v, 0) : throw new PargsException($"{Source}: no vector \"{name}\"");

    /// <summary>The matrix's stored format by name (for descriptions), null when absent.</summary>
    public WeightFormat? FormatOf(string name) => matrices.TryGetValue(name, out var m) ? m.Format : null;

    /// <summary>How many bytes are stored in each format (matrices only), e.g. for "q8_0 480 MB, f32 0.3 MB".</summary>
    public IReadOnlyDictionary<WeightFormat, long> BytesByFormat()
        => matrices.Values.GroupBy(m => m.Format).ToDictionary(g => g.Key, g => g.Sum(m => m.ByteLength));

    public void Dispose()
    {
        matrices.Clear();
        vectors.Clear();
        foreach (var o in owned) o.Dispose();
        owned.Clear();
    }
}
