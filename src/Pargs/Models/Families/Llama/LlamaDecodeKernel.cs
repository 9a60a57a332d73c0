using System.Runtime.CompilerServices;
using Pargs.Models.Cpu;
using Pargs.Weights;
using TorchSharp;
using static TorchSharp.torch;

namespace Pargs.Models.Families.Llama;

/// <summary>
/// <see cref="LlamaModel.Forward"/> for the few new tokens of a decoding step (one per row, or k sibling
/// candidates) over a KV cache, on Pargs' CPU kernels instead of ~50 torch ops per layer. WHY: at batch 1 a
/// step is a chain of small ops; through TorchSharp each costs microseconds of dispatch whatever its size, and
/// libtorch's matrix–vector products use one core. Here the step is the llama2.c loop — norm, q/k/v, rotary,
/// cache write, attention, o, residual, norm, SwiGLU, residual — with the weight products split over
/// <see cref="CpuThreads"/>. Same inputs, same outputs and cache writes as the torch path (tested against it
/// to 1e-5); the torch path stays the reference and runs everything else (prefills of larger models, see
/// <see cref="Takes"/>; training; gradients).
/// <para>Weights are read by their Hugging Face names, in place: no copy, no second layout. Every matrix product
/// (q/k/v/o, gate/up/down) goes through <see cref="WeightMatrix"/> in the format the weight is stored in: the
/// module's float32 tensors (the reference path), or — for a model loaded for inference
/// (<see cref="LlamaStoredBackbone"/>) — F16/BF16/Q8_0/Q4_0/K-quant views into the mapped checkpoint, with the
/// embedding row dequantized on lookup. A stored-precision kernel takes every forward (there is no float32 copy
/// for torch to run), prefills included: n tokens are one n-row product per matrix.</para>
/// </summary>
internal sealed unsafe class LlamaDecodeKernel : IDecodeKernel
{
    /// <summary>
    /// Whether a forward of <paramref name="tokens"/> new tokens (rows × tokens per row) runs here. Decoding steps
    /// always do (up to 32 tokens: a step, or k sibling candidates of a few rows). Longer forwards (up to 1024 tokens) do
    /// while their weight products stay small (tokens · hidden² ≤ 4M multiply-adds per square matrix, e.g. a stories260K
    /// prompt of up to 1024 tokens: there torch's per-op cost dominates; through torch a 16-token stories260K prefill took
    /// 2.4–3.1 ms against 0.5 ms here), and at any size when <see cref="CpuGemm"/> takes every one of the layer's products
    /// (matrices up to 4 MiB: the 15M shape's, not the 110M's 2048 × 768): on one thread torch took 1.01–1.46× the kernel's
    /// CPU time for the 15M shape's sibling forwards of 50 to 640 candidates, 0.99–1.61× for its prefills of 48 to 256 tokens,
    /// and 1.00–1.25× at stories42M's widths (bench gemm's crossover table, docs/benchmarks.md); and the candidates can then
    /// split by rows over two threads. A larger model's products go to libtorch's GEMM, faster than the kernel's
    /// dot-product blocks there.
    /// </summary>
    static bool Takes(long tokens, ModelConfig config)
        => tokens <= 32 || (tokens <= 1024 && (tokens * config.HiddenSize * config.HiddenSize <= MaxSquareWork || LargeForwards && GemmTakesEveryProduct((int)tokens, config)));

    /// <summary>Whether CpuGemm takes each of a layer's products at <paramref name="tokens"/> rows: q/o (hidden ↔ heads · head_dim), gate/up and down.</summary>
    static bool GemmTakesEveryProduct(int tokens, ModelConfig config)
    {
        int hidden = config.HiddenSize, attention = config.NumHeads * config.HeadDim, inter = config.IntermediateSize;
        return CpuGemm.Takes(tokens, hidden, attention) && CpuGemm.Takes(tokens, attention, hidden)
            && CpuGemm.Takes(tokens, hidden, inter) && CpuGemm.Takes(tokens, inter, hidden);
    }

    /// <summary>
    /// Multiply–adds below which a forward runs on the calling thread alone (PARGS_SERIAL_WORK; 0 = each product decides).
    /// 4 M: stories260K's LM step of up to ~18 rows and one row's ten candidates (2.3 M, ~1 µs a product) stay whole — at
    /// --threads 2 a 12-row LM step split by product took 0.80–0.96 ms wall against 0.45 on one thread —, while a 15M-shape
    /// row (6 M, its weights streamed from memory) still splits.
    /// </summary>
    internal static long SerialWork { get => serialWorkOverride ?? serialWork; set => serialWork = value; }
    static long serialWork = TuningVariable.Read("PARGS_SERIAL_WORK", 1L << 22, 0, 1L << 62);
    // This thread's SerialWork while a SerialWorkOverride scope lives: a test splitting small forwards leaves other threads' alone.
    [ThreadStatic] static long? serialWorkOverride;

    /// <summary>
    /// Until the returned scope is disposed, forwards this thread runs use <paramref name="work"/> as their SerialWork (0: a
    /// small forward splits its products and attention over the threads as a large one does). For tests and A/B runs: the
    /// tiny test models are all under the default, so without it no test would split inside a forward.
    /// </summary>
    public static SerialWorkScope SerialWorkOverride(long work)
    {
        var scope = new SerialWorkScope(serialWorkOverride);
        serialWorkOverride = Math.Max(0, work);
        return scope;
    }

    /// <summary>Puts back the SerialWork a <see cref="SerialWorkOverride"/> block replaced (on the thread that opened it).</summary>
    public readonly struct SerialWorkScope(long? previous) : IDisposable
    {
        public void Dispose() => serialWorkOverride = previous;
    }

    /// <summary>The largest tokens · hidden² of a forward over 32 tokens that runs here whatever the products' kernel (bench gemm's crossover table lifts it).</summary>
    internal static long MaxSquareWork { get; set; } = 1L << 22;

    /// <summary>Whether forwards over 32 tokens run here when CpuGemm takes their products (PARGS_KERNEL_LARGE_FORWARDS=0: the old rule, A/B runs of one build).</summary>
    internal static bool LargeForwards { get; set; } = Environment.GetEnvironmentVariable("PARGS_KERNEL_LARGE_FORWARDS") != "0";

    /// <summary>
    /// Float32 weights only (the module's, or a stored checkpoint's F32 tensors): every row's products then sum in one
    /// order for any row count that picks the same product kernel (CpuGemm, or the dot-product blocks from 2 rows on),
    /// and attention, norms and rotary are per row. The other stored formats' multi-row kernels are not claimed here.
    /// </summary>
    public bool RowSplitKeepsBits(long tokens, long fewestTokens)
        => fewestTokens >= 2 && (stored ? storedFloat32 : CpuKernels.Enabled && Takes(tokens, config)) && CpuGemm.SameChoice((int)fewestTokens, (int)tokens);

    // Stored mode: every matrix is float32 read as is (no activation rounding), so its products are CpuOps.MatMul's.
    readonly bool storedFloat32;

    readonly ModelConfig config;
    readonly RotaryEmbedding rotary;
    // The rotated width at the start of each head: head_dim, or less for a partial rotary (Phi-3's
    // partial_rotary_factor); the tables' width.
    readonly int rotaryDims;
    // Module mode: the rows of each tensor the kernel reads as one matrix (FirstRow, Rows; Rows 0 = all) — a
    // family with fused projections (Phi-3's qkv_proj, gate_up_proj) hands out row ranges of one parameter.
    readonly (long FirstRow, long Rows)[] slices = [];
    // Where the family's layer departs from Llama's (LayerNorm, parallel residual, fused per-head q/k/v, GELU MLP).
    readonly DecodeLayerForm form = DecodeLayerForm.Llama;
    // The rotary of the layers DecodeLayerForm.SlidingLayers marks (Gemma-3's local base); null = the one rotary.
    readonly RotaryEmbedding? slidingRotary;
    // Attention's score scale (0 = head_dim^−½) and soft-cap (0 = none), from the form.
    readonly float attentionScale, attentionSoftCap;
    float* finalNormBias;
    // Module mode: every tensor the kernel reads, flat: embed, final norm, cos, signed sin, then each layer's in
    // LlamaLayerTensor order (null = no bias). Their addresses are validated once (float32, contiguous) and
    // re-validated only when one moves. Null in stored mode, whose weights never move.
    readonly Tensor?[]? tensors;
    readonly IntPtr[] addresses;
    bool validated;
    const int Globals = 5; // embedding, final norm, cos, signed sin, final norm bias (null but for LayerNorm)
    static readonly int PerLayer = LlamaTensors.LayerTensors.Length;
    // What a forward reads: the embedding and each layer's matrices (index layer · PerLayer + kind; null for the
    // vector kinds) as WeightMatrix, the vectors (norms, biases; 0 = absent) as addresses.
    WeightMatrix embedding = null!;
    WeightMatrix?[] matrices = [];
    IntPtr[] vectors = [];
    float* finalNorm;
    /// <summary>Stored mode: the weights are a checkpoint's, not the module's; this kernel takes every forward.</summary>
    readonly bool stored;
    readonly WeightProduct product = new();
    // Module mode: the model's kept CpuGemm panels when it is held for inference only (KeptPanels), else null.
    readonly KeptPanels? keptPanels;
    readonly Action<int, int> attentionBody;
    readonly object gate = new();
    // Activations of the step, [tokens, width]: pinned so the kernels can hold raw pointers into them.
    float[] x = [], xb = [], q = [], k = [], v = [], att = [], gateBuf = [], up = [], maskAdd = [], qkv = [], attOut = [];
    // The step's attention arguments, read by attentionBody on the workers.
    float* qPtr, attPtr; float*[] keyPtr = [], valuePtr = [];
    float* maskAddPtr;
    int stepTokens, stepSlots, stepRows;
    // Where each row of the step keeps its keys/values, per layer: layer l's row r starts at rowKeys/rowValues[l · rows + r]
    // (kv head g at + g · rowCapacity[r] slots). One [B, kvHeads, capacity, D] buffer per layer (ContiguousRows), or a cache
    // of its own per row (TryForwardRows: each row's start moved left by its padding in the step's common slots, so that
    // slot s of the step is the row's slot s − padding; the masked padding is never read).
    nint[] rowKeys = [], rowValues = [];
    int[] rowCapacity = [];
    bool rowsSet; // TryForwardRows filled the row arrays for this forward

    public LlamaDecodeKernel(LlamaModel model) : this(model.Config, model.Rotary, Parameters(model), (p, layer, kind) =>
        LlamaTensors.Shape(model.Config, kind) is null ? null : (p[LlamaTensors.Name(layer, kind)], 0, 0), keptPanels: KeptPanels.Of(model))
    {
    }

    /// <summary>
    /// A kernel over a module whose layers are Llama's but whose tensors are stored differently: <paramref name="layerTensor"/>
    /// gives, for (parameters by name, layer, kind), the parameter holding that tensor and its rows (FirstRow, Rows; 0 =
    /// all), or null when the layer has none (an absent bias). The embedding and final norm are read under Llama's names.
    /// </summary>
    internal LlamaDecodeKernel(ModelConfig config, RotaryEmbedding rotary, Dictionary<string, Tensor> parameters,
                               Func<Dictionary<string, Tensor>, int, LlamaLayerTensor, (Tensor Tensor, long FirstRow, long Rows)?> layerTensor,
                               DecodeLayerForm? form = null, string embeddingName = LlamaTensors.Embedding,
                               string finalNormName = LlamaTensors.FinalNorm, string? finalNormBiasName = null,
                               RotaryEmbedding? slidingRotary = null, KeptPanels? keptPanels = null)
    {
        this.keptPanels = keptPanels;
        this.config = config;
        this.rotary = rotary;
        this.form = form ?? DecodeLayerForm.Llama;
        this.slidingRotary = slidingRotary;
        attentionScale = (float)(this.form.AttentionScale ?? 0);
        attentionSoftCap = (float)(this.form.AttentionSoftCap ?? 0);
        rotaryDims = (int)rotary.CosTable.shape[1];
        var list = new List<Tensor?> { parameters[embeddingName], parameters[finalNormName], rotary.CosTable, rotary.SignedSinTable,
                                       finalNormBiasName is null ? null : parameters[finalNormBiasName] };
        var rows = new List<(long, long)> { (0, 0), (0, 0), (0, 0), (0, 0), (0, 0) };
        for (int i = 0; i < config.NumLayers; i++)
            foreach (var kind in LlamaTensors.LayerTensors)
            {
                var source = layerTensor(parameters, i, kind);
                list.Add(source?.Tensor);
                rows.Add(source is { } s ? (s.FirstRow, s.Rows) : (0, 0));
            }
        tensors = list.ToArray();
        slices = rows.ToArray();
        addresses = new IntPtr[tensors.Length];
        attentionBody = AttentionRange;
    }

    static Dictionary<string, Tensor> Parameters(nn.Module model) => model.named_parameters().ToDictionary(np => np.name, np => (Tensor)np.parameter);

    /// <summary>
    /// A kernel over a checkpoint's weights in their stored precision (<paramref name="weights"/>, Hugging Face names
    /// under <paramref name="prefix"/>, e.g. "model."), with rotary tables <paramref name="rotary"/> the caller owns.
    /// </summary>
    /// <param name="keptPanels">The backbone's kept panels when it is held for inference only: its plain float32 matrices
    /// carry them (<see cref="WeightMatrix.WithKeptPanels"/>).</param>
    public LlamaDecodeKernel(ModelConfig config, StoredTensors weights, string prefix, RotaryEmbedding rotary, KeptPanels? keptPanels = null)
    {
        this.config = config;
        this.rotary = rotary;
        rotaryDims = rotary.Dims;
        stored = true;
        addresses = [];
        attentionBody = AttentionRange;
        embedding = weights.Matrix(prefix + LlamaTensors.Embedding);
        finalNorm = weights.Vector(prefix + LlamaTensors.FinalNorm);
        matrices = new WeightMatrix?[config.NumLayers * PerLayer];
        vectors = new IntPtr[config.NumLayers * PerLayer];
        for (int l = 0; l < config.NumLayers; l++)
            foreach (var kind in LlamaTensors.LayerTensors)
            {
                if (LlamaTensors.Shape(config, kind) is null) continue;
                string name = prefix + LlamaTensors.Name(l, kind);
                if (IsMatrix(kind)) matrices[l * PerLayer + (int)kind] = weights.Matrix(name).WithKeptPanels(keptPanels);
                else vectors[l * PerLayer + (int)kind] = (IntPtr)weights.Vector(name);
            }
        storedFloat32 = matrices.All(m => m is null || (m.Format == WeightFormat.F32 && m.ActivationRounding is null));
    }

    /// <summary>The kernel for <paramref name="backbone"/>: over its stored weights, or over the module's float32 tensors.</summary>
    public static IDecodeKernel For(TransformerBackbone backbone)
        => backbone is LlamaStoredBackbone stored ? stored.CreateKernel() : new LlamaDecodeKernel((LlamaModel)backbone);

    /// <summary>The layer tensors that are weight matrices (the rest are norms and biases).</summary>
    public static bool IsMatrix(LlamaLayerTensor kind) => kind is LlamaLayerTensor.QProj or LlamaLayerTensor.KProj or LlamaLayerTensor.VProj
        or LlamaLayerTensor.OProj or LlamaLayerTensor.GateProj or LlamaLayerTensor.UpProj or LlamaLayerTensor.DownProj;

    /// <summary>
    /// The forward of <paramref name="inputIds"/> [B, T] at <paramref name="positions"/> [B, T] with
    /// <paramref name="mask"/> [B, 1, T, Length + T] over <paramref name="cache"/>, writing the new keys/values at
    /// slots Length.. like <see cref="KvCache.Write"/>. Returns the final-normed hidden states [B, T, hidden],
    /// or null when this step is not one the kernel takes (the caller runs torch).
    /// </summary>
    public Tensor? TryForward(Tensor inputIds, Tensor positions, Tensor mask, KvCache cache)
    {
        long rows = inputIds.shape[0], perRow = inputIds.shape[1];
        // Stored weights have no torch twin: every forward runs here (a gradient through them is impossible anyway).
        if (!stored && (!CpuKernels.Enabled || is_grad_enabled() || !Takes(rows * perRow, config))) return null;
        if (cache.Length + perRow > cache.Capacity) throw new InvalidOperationException("KvCache.Reserve was not called before the forward");
        if (mask.dtype != ScalarType.Bool || mask.shape[3] != cache.Length + perRow)
            return stored ? throw new ArgumentException($"mask [{string.Join(", ", mask.shape)}] ({mask.dtype}) does not fit a forward of {perRow} tokens over {cache.Length} cached slots") : null;
        lock (gate)
        {
            using var scope = NewDisposeScope();
            var hidden = Run(inputIds, positions, mask.contiguous(), cache);
            if (hidden is null)
            {
                if (stored) throw new InvalidOperationException("the stored-precision kernel declined a forward");
                return null;
            }
            CpuKernels.CountForward();
            return hidden.MoveToOuterDisposeScope();
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // see CpuOps
    Tensor? Run(Tensor inputIds, Tensor positions, Tensor mask, KvCache cache)
    {
        int b = (int)inputIds.shape[0], t = (int)inputIds.shape[1], nLayers = config.NumLayers;
        if (!stored && !WeightsReadable()) return null; // e.g. column-major weights: torch handles those
        long* ids = TensorMemory.Int64s(inputIds.contiguous()), pos = TensorMemory.Int64s(positions.contiguous());
        // Mistral's sliding window: the same restricted mask the torch path builds (SlidingWindow), read as usual. With
        // per-layer windows (Gemma) the restricted mask is a second one, for the sliding layers only.
        Tensor? slidingMask = null;
        if (config.SlidingWindow is { } window)
        {
            var restricted = SlidingWindow.Restrict(mask, positions, cache, window).contiguous();
            if (form.SlidingLayers is null) mask = restricted;
            else slidingMask = restricted;
        }
        bool* allowed = TensorMemory.Bools(mask), slidingAllowed = slidingMask is null ? null : TensorMemory.Bools(slidingMask);
        if (ids == null || pos == null || allowed == null || (slidingMask is not null && slidingAllowed == null)) return null;
        if (keyPtr.Length != nLayers) { keyPtr = new float*[nLayers]; valuePtr = new float*[nLayers]; }
        for (int l = 0; l < nLayers; l++)
        {
            var (keys, values) = cache.Buffers(l);
            keyPtr[l] = (float*)TensorMemory.Address(keys); // KvCache makes them contiguous (float32 or float16)
            valuePtr[l] = (float*)TensorMemory.Address(values);
        }
        var output = empty(b, t, config.HiddenSize, dtype: ScalarType.Float32);
        // A float16 cache (--kv-cache f16): the same buffers hold halves; written rounded, widened when attended.
        Forward(ids, pos, allowed, slidingAllowed, b, t, cache.Length, cache.Capacity, cache.Type == KvCacheType.F16, TensorMemory.Floats(output));
        return output;
    }

    /// <summary>
    /// The forward of <paramref name="inputIds"/> [B, T] where row b's keys/values live in a cache of its own,
    /// <paramref name="rows"/>[b] (one row, float32, its real tokens in slots 0 .. Length − 1, room for T more): the step's
    /// slots are those of the longest row, L = max Length, and a shorter row's are right-aligned to them as a batch's rows are
    /// (its first L − Length slots padding). <paramref name="mask"/> [B, 1, T, L + T] is over those common slots and must mask
    /// every row's padding; the new keys/values go to each row's slots Length .. Length + T − 1. The same arithmetic as a
    /// forward over those rows stacked into one cache (<see cref="KvCache.StackRows"/>), without the stacking: a server keeps
    /// each client row's cache where it is between requests. Null when the kernel does not take it (the caller stacks).
    /// </summary>
    public Tensor? TryForwardRows(Tensor inputIds, Tensor positions, Tensor mask, IReadOnlyList<KvCache> rows)
    {
        int b = (int)inputIds.shape[0], t = (int)inputIds.shape[1], nLayers = config.NumLayers;
        if (!TakesRows((long)b * t) || rows.Count != b || b == 0) return null;
        int length = 0;
        foreach (var row in rows)
        {
            if (row.BatchSize != 1 || row.Type != KvCacheType.F32) return null; // a float16 row is widened from its slot 0: no padding there
            if (row.Length + t > row.Capacity) throw new InvalidOperationException("KvCache.Reserve was not called before the forward");
            length = Math.Max(length, row.Length);
        }
        if (mask.dtype != ScalarType.Bool || mask.dim() != 4 || mask.shape[0] != b || mask.shape[1] != 1 || mask.shape[2] != t || mask.shape[3] != length + t
            || positions.shape[0] != b || positions.shape[1] != t) return null;
        lock (gate)
        {
            using var scope = NewDisposeScope();
            if (!stored && !WeightsReadable()) return null;
            using var maskRows = mask.contiguous();
            long* ids = TensorMemory.Int64s(inputIds.contiguous()), pos = TensorMemory.Int64s(positions.contiguous());
            bool* allowed = TensorMemory.Bools(maskRows);
            if (ids == null || pos == null || allowed == null) return null;
            for (int r = 0; r < b; r++)
                for (int j = 0; j < t; j++)
                {
                    // Reading a row before its slot 0 would leave its buffer: its padding must be masked, and each new token
                    // must see itself (a token that saw nothing would have attention start at slot 0, in the padding).
                    bool* slots = allowed + ((long)r * t + j) * (length + t);
                    for (int s = 0; s < length - rows[r].Length; s++)
                        if (slots[s]) throw new ArgumentException($"the mask lets row {r} see slot {s}, before its first ({length - rows[r].Length})");
                    if (!slots[length + j]) throw new ArgumentException($"the mask hides row {r}'s new token {j} from itself");
                }
            EnsureRows(b, nLayers);
            int headDim = config.HeadDim;
            for (int r = 0; r < b; r++)
            {
                long padding = (long)(length - rows[r].Length) * headDim * sizeof(float);
                rowCapacity[r] = rows[r].Capacity;
                for (int l = 0; l < nLayers; l++)
                {
                    var (keys, values) = rows[r].Addresses(l);
                    rowKeys[l * b + r] = keys - (nint)padding; // never read below the row's slot 0 (masked)
                    rowValues[l * b + r] = values - (nint)padding;
                }
            }
            var output = empty(b, t, config.HiddenSize, dtype: ScalarType.Float32);
            rowsSet = true;
            try { Forward(ids, pos, allowed, null, b, t, length, 0, false, TensorMemory.Floats(output)); }
            finally { rowsSet = false; }
            CpuKernels.CountForward();
            return output.MoveToOuterDisposeScope();
        }
    }

    /// <summary>The forwards <see cref="TryForwardRows"/> takes: those <see cref="TryForward"/> takes, but for a sliding window (its mask is built over one cache).</summary>
    public bool TakesRows(long tokens)
        => config.SlidingWindow is null && (stored || (CpuKernels.Enabled && !is_grad_enabled() && Takes(tokens, config)));

    void EnsureRows(int b, int nLayers)
    {
        if (rowKeys.Length < b * nLayers) { rowKeys = new nint[b * nLayers]; rowValues = new nint[b * nLayers]; }
        if (rowCapacity.Length < b) rowCapacity = new int[b];
    }

    /// <summary>The row arrays of a forward over one [B, kvHeads, capacity, D] buffer per layer (keyPtr, valuePtr).</summary>
    void ContiguousRows(int b, int capacity, bool half)
    {
        int nLayers = config.NumLayers;
        EnsureRows(b, nLayers);
        long rowBytes = (long)config.NumKvHeads * capacity * config.HeadDim * (half ? sizeof(ushort) : sizeof(float));
        for (int r = 0; r < b; r++)
        {
            rowCapacity[r] = capacity;
            for (int l = 0; l < nLayers; l++)
            {
                rowKeys[l * b + r] = (nint)((byte*)keyPtr[l] + r * rowBytes);
                rowValues[l * b + r] = (nint)((byte*)valuePtr[l] + r * rowBytes);
            }
        }
    }

    /// <summary>
    /// The host entry of a stored-precision kernel (<see cref="Engine.HostSession"/>: no torch anywhere): the forward of
    /// <paramref name="ids"/> [rows, perRow] at <paramref name="positions"/> under <paramref name="allowed"/> [rows, perRow,
    /// length + perRow] over a cache whose layer l keys/values are at <paramref name="keys"/>[l] / <paramref name="values"/>[l]
    /// ([rows, kvHeads, capacity, head_dim], float32 or float16), writing the new keys/values at slots length.. as
    /// <see cref="TryForward"/> does; the final-normed hidden states go to <paramref name="output"/> [rows · perRow, hidden].
    /// The same body as the torch entry (<see cref="Forward"/>): same arithmetic, same bits.
    /// </summary>
    public void ForwardHost(long[] ids, long[] positions, bool[] allowed, int rows, int perRow, int length, int capacity,
                            IntPtr[] keys, IntPtr[] values, bool halfCache, float[] output)
    {
        if (!stored) throw new InvalidOperationException("the host entry computes on stored weights only");
        // The sliding window's restricted mask is built by torch (SlidingWindow); such models keep the torch session.
        if (config.SlidingWindow is not null) throw new InvalidOperationException("the host entry does not restrict masks to a sliding window");
        int n = rows * perRow;
        if (ids.Length < n || positions.Length < n || allowed.Length < (long)n * (length + perRow) || output.Length < (long)n * config.HiddenSize
            || keys.Length != config.NumLayers || values.Length != config.NumLayers || length + perRow > capacity)
            throw new ArgumentException("host forward buffers do not fit the forward");
        lock (gate)
        {
            if (keyPtr.Length != config.NumLayers) { keyPtr = new float*[config.NumLayers]; valuePtr = new float*[config.NumLayers]; }
            for (int l = 0; l < config.NumLayers; l++) { keyPtr[l] = (float*)keys[l]; valuePtr[l] = (float*)values[l]; }
            fixed (long* idsP = ids, posP = positions)
            fixed (bool* allowedP = allowed)
            fixed (float* outP = output)
                Forward(idsP, posP, allowedP, null, rows, perRow, length, capacity, halfCache, outP);
            CpuKernels.CountForward();
        }
    }

    /// <summary>The forward itself, on raw buffers (the key/value pointers of every layer set by the caller in keyPtr/valuePtr).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // see CpuOps
    void Forward(long* ids, long* pos, bool* allowed, bool* slidingAllowed, int b, int t, int length, int capacity, bool half, float* outP)
    {
        int hidden = config.HiddenSize, headDim = config.HeadDim, heads = config.NumHeads, kvHeads = config.NumKvHeads;
        int kvDim = config.KvDim, inter = config.IntermediateSize, nLayers = config.NumLayers;
        int n = b * t, slots = length + t;
        float* normP = finalNorm;
        float* W(int layer, LlamaLayerTensor j) => (float*)vectors[layer * PerLayer + (int)j];
        WeightMatrix M(int layer, LlamaLayerTensor j) => matrices[layer * PerLayer + (int)j]!;
        for (int i = 0; i < n; i++)
        {
            // What torch's embedding and rotary-table lookups would refuse; here they would read past the tables.
            if (ids[i] < 0 || ids[i] >= config.VocabSize) throw new PargsException($"token id {ids[i]} is outside the vocabulary (0..{config.VocabSize - 1})");
            if (pos[i] < 0 || pos[i] >= config.MaxPositions) throw new PargsException($"position {pos[i]} is outside the model's context (0..{config.MaxPositions - 1})");
        }
        long maxPosition = 0;
        for (int i = 0; i < n; i++) maxPosition = Math.Max(maxPosition, pos[i]);
        // LongRoPE switches tables past its original context; lazily tabulated tables (stored models) grow here.
        rotary.TablePointers(maxPosition + 1, out float* cosP, out float* sinP);
        float* slidingCosP = cosP, slidingSinP = sinP;
        if (slidingRotary is not null) slidingRotary.TablePointers(maxPosition + 1, out slidingCosP, out slidingSinP);

        // A forward this small computes on this thread alone: its products are too short to hand off (SerialWork).
        using var serial = CpuThreads.Serial((long)n * nLayers * ((2L * heads * headDim + 2L * kvDim + 3L * inter) * hidden) < SerialWork);
        Ensure(ref x, n * hidden); Ensure(ref xb, n * hidden); Ensure(ref att, n * heads * headDim);
        Ensure(ref q, n * heads * headDim); Ensure(ref k, n * kvDim); Ensure(ref v, n * kvDim);
        Ensure(ref gateBuf, n * inter); Ensure(ref up, n * inter); Ensure(ref maskAdd, n * slots * (slidingAllowed == null ? 1 : 2));
        fixed (float* xP = x, xbP = xb, qP = q, kP = k, vP = v, attP = att, gP = gateBuf, upP = up, maskP = maskAdd)
        {
            // The boolean mask [B, 1, T, slots] as additive rows (0 / −inf), once for all layers and heads.
            for (long i = 0; i < (long)n * slots; i++) maskP[i] = allowed[i] ? 0f : float.NegativeInfinity;
            float* slidingMaskP = maskP + (long)n * slots; // the sliding layers' rows, after the global ones
            if (slidingAllowed != null)
                for (long i = 0; i < (long)n * slots; i++) slidingMaskP[i] = slidingAllowed[i] ? 0f : float.NegativeInfinity;
            for (int i = 0; i < n; i++)
            {
                if (embedding.Format == WeightFormat.F32 && embedding.RowOrder is null)
                    Buffer.MemoryCopy(embedding.Row((int)ids[i]), xP + (long)i * hidden, hidden * 4L, hidden * 4L);
                else embedding.DequantizeRow((int)ids[i], new Span<float>(xP + (long)i * hidden, hidden));
                // Gemma: × √hidden in float32, as transformers multiplies by a tensor of the embedding's dtype.
                if (form.EmbeddingScale != 0)
                    for (int e = 0; e < hidden; e++) xP[(long)i * hidden + e] *= form.EmbeddingScale;
            }
            halfCache = half;
            qPtr = qP; attPtr = attP; maskAddPtr = maskP;
            (stepTokens, stepSlots, stepRows) = (t, slots, b);
            if (!rowsSet) ContiguousRows(b, capacity, half);

            for (int l = 0; l < nLayers; l++)
            {
                // Gemma's local layers: the window's mask and their own rotary.
                bool slidingLayer = form.SlidingLayers is { } slidingLayers && slidingLayers[l];
                float* layerCosP = slidingLayer ? slidingCosP : cosP, layerSinP = slidingLayer ? slidingSinP : sinP;
                maskAddPtr = slidingLayer && slidingAllowed != null ? slidingMaskP : maskP;
                // Attention block: x += o(attend(rotary(q), cache ∪ rotary(k), cache ∪ v)) of norm(x).
                NormRows(xP, W(l, LlamaLayerTensor.InputNorm), W(l, LlamaLayerTensor.InputNormBias), xbP, n);
                if (form.FusedQkvPerHead) // GPT-NeoX: one product, then each head's q | k | v rows apart
                {
                    Ensure(ref qkv, n * 3 * heads * headDim);
                    fixed (float* qkvP = qkv)
                    {
                        Product(M(l, LlamaLayerTensor.QProj), W(l, LlamaLayerTensor.QBias), xbP, n, qkvP);
                        for (long h = 0; h < (long)n * heads; h++)
                        {
                            Buffer.MemoryCopy(qkvP + h * 3 * headDim, qP + h * headDim, headDim * 4L, headDim * 4L);
                            Buffer.MemoryCopy(qkvP + (h * 3 + 1) * headDim, kP + h * headDim, headDim * 4L, headDim * 4L);
                            Buffer.MemoryCopy(qkvP + (h * 3 + 2) * headDim, vP + h * headDim, headDim * 4L, headDim * 4L);
                        }
                    }
                }
                else
                {
                    Product(M(l, LlamaLayerTensor.QProj), W(l, LlamaLayerTensor.QBias), xbP, n, qP);
                    Product(M(l, LlamaLayerTensor.KProj), W(l, LlamaLayerTensor.KBias), xbP, n, kP);
                    Product(M(l, LlamaLayerTensor.VProj), W(l, LlamaLayerTensor.VBias), xbP, n, vP);
                }
                if (config.QkNorm) // Qwen3, Gemma-3: RMSNorm over each head of q and k, in place, before the rotary
                {
                    for (int h = 0; h < n * heads; h++) HeadNorm(qP + (long)h * headDim, W(l, LlamaLayerTensor.QNorm), headDim);
                    for (int g = 0; g < n * kvHeads; g++) HeadNorm(kP + (long)g * headDim, W(l, LlamaLayerTensor.KNorm), headDim);
                }
                for (int i = 0; i < n; i++)
                {
                    // The first rotaryDims of each head (all of it but for a partial rotary); the rest passes through.
                    float* c = layerCosP + pos[i] * rotaryDims, s = layerSinP + pos[i] * rotaryDims;
                    for (int h = 0; h < heads; h++) CpuOps.Rotary(qP + ((long)i * heads + h) * headDim, c, s, rotaryDims);
                    for (int g = 0; g < kvHeads; g++) CpuOps.Rotary(kP + ((long)i * kvHeads + g) * headDim, c, s, rotaryDims);
                    // Each row's cache [kvHeads, capacity, D] (rowKeys): token i = (row, j) goes to slot length + j.
                    int row = i / t, j = i % t;
                    for (int g = 0; g < kvHeads; g++)
                    {
                        long slot = ((long)g * rowCapacity[row] + length + j) * headDim;
                        nint rowKey = rowKeys[l * b + row], rowValue = rowValues[l * b + row];
                        float* newKey = kP + ((long)i * kvHeads + g) * headDim, newValue = vP + ((long)i * kvHeads + g) * headDim;
                        if (halfCache)
                        {
                            Float16.FromFloats(new ReadOnlySpan<float>(newKey, headDim), new Span<ushort>((ushort*)rowKey + slot, headDim));
                            Float16.FromFloats(new ReadOnlySpan<float>(newValue, headDim), new Span<ushort>((ushort*)rowValue + slot, headDim));
                            continue;
                        }
                        CpuOps.CopyFloats(newKey, (float*)rowKey + slot, headDim);
                        CpuOps.CopyFloats(newValue, (float*)rowValue + slot, headDim);
                    }
                }
                attentionLayer = l;
                CpuThreads.For(b * kvHeads, attentionBody);
                // A parallel residual (GPT-NeoX) keeps the attention output aside: the MLP reads the layer's input.
                Ensure(ref attOut, form.ParallelResidual ? n * hidden : 0);
                fixed (float* attOutP = attOut)
                {
                    Product(M(l, LlamaLayerTensor.OProj), W(l, LlamaLayerTensor.OBias), attP, n, form.ParallelResidual ? attOutP : xbP);
                    if (form.SandwichNorms) NormRows(xbP, W(l, LlamaLayerTensor.AttentionOutputNorm), null, xbP, n); // Gemma
                    if (!form.ParallelResidual) CpuOps.Add(xP, xbP, n * hidden);

                    // Feed-forward block: x += down(silu(gate(norm(x))) · up(norm(x))), or down(gelu(up(norm(x)))).
                    NormRows(xP, W(l, LlamaLayerTensor.PostAttentionNorm), W(l, LlamaLayerTensor.PostAttentionNormBias), xbP, n);
                    if (form.Activation == DecodeActivation.SwiGlu)
                    {
                        Product(M(l, LlamaLayerTensor.GateProj), null, xbP, n, gP);
                        Product(M(l, LlamaLayerTensor.UpProj), null, xbP, n, upP);
                        CpuOps.SiluMul(gP, upP, n * inter);
                        Product(M(l, LlamaLayerTensor.DownProj), null, gP, n, xbP);
                    }
                    else if (form.Activation == DecodeActivation.GeGluTanh) // Gemma
                    {
                        Product(M(l, LlamaLayerTensor.GateProj), null, xbP, n, gP);
                        Product(M(l, LlamaLayerTensor.UpProj), null, xbP, n, upP);
                        CpuOps.GeluTanhMul(gP, upP, n * inter);
                        Product(M(l, LlamaLayerTensor.DownProj), null, gP, n, xbP);
                    }
                    else
                    {
                        Product(M(l, LlamaLayerTensor.UpProj), W(l, LlamaLayerTensor.UpBias), xbP, n, upP);
                        CpuOps.Gelu(upP, n * inter, exact: form.Activation == DecodeActivation.GeluExact);
                        Product(M(l, LlamaLayerTensor.DownProj), W(l, LlamaLayerTensor.DownBias), upP, n, xbP);
                    }
                    if (form.SandwichNorms) NormRows(xbP, W(l, LlamaLayerTensor.MlpOutputNorm), null, xbP, n); // Gemma
                    CpuOps.Add(xP, xbP, n * hidden);
                    if (form.ParallelResidual) CpuOps.Add(xP, attOutP, n * hidden);
                }
            }
            NormRows(xP, normP, finalNormBias, outP, n);
        }
    }

    /// <summary>n rows of hidden width normalised: RMSNorm, or LayerNorm with <paramref name="bias"/> (DecodeLayerForm.LayerNorm).</summary>
    void NormRows(float* x, float* weight, float* bias, float* y, int n)
    {
        int hidden = config.HiddenSize;
        for (int i = 0; i < n; i++)
        {
            if (form.LayerNorm) CpuOps.LayerNorm(x + (long)i * hidden, weight, bias, config.NormEps, y + (long)i * hidden, hidden);
            else if (form.NormPlusOne) CpuOps.RmsNormPlusOne(x + (long)i * hidden, weight, config.NormEps, y + (long)i * hidden, hidden);
            else CpuOps.RmsNorm(x + (long)i * hidden, weight, config.NormEps, y + (long)i * hidden, hidden);
        }
    }

    /// <summary>One head of q or k RMS-normalised in place (Qwen3's w, Gemma-3's 1 + w).</summary>
    void HeadNorm(float* head, float* weight, int headDim)
    {
        if (form.NormPlusOne) CpuOps.RmsNormPlusOne(head, weight, config.NormEps, head, headDim);
        else CpuOps.RmsNorm(head, weight, config.NormEps, head, headDim);
    }

    /// <summary>
    /// y [n, rows] = x [n, cols] · Wᵀ (+ bias) in W's stored format (<see cref="WeightProduct"/>: F32 is the
    /// float32 kernel, integer formats quantize x to 8 bits once per product, as llama.cpp does).
    /// </summary>
    void Product(WeightMatrix w, float* bias, float* x, int n, float* y)
    {
        product.Run(w, x, n, y);
        if (bias != null)
            for (int i = 0; i < n; i++) CpuOps.Add(y + (long)i * w.Rows, bias, w.Rows);
    }

    /// <summary>
    /// Module mode: fills <see cref="addresses"/> and the float32 views over them; false when a tensor is not
    /// contiguous float32 (the torch path runs).
    /// </summary>
    bool WeightsReadable()
    {
        var tensors = this.tensors!;
        bool moved = !validated;
        for (int i = 0; i < tensors.Length && !moved; i++)
            if (tensors[i] is { } t && TensorMemory.Address(t) != addresses[i]) moved = true;
        if (!moved) return true;
        validated = false;
        for (int i = 0; i < tensors.Length; i++)
        {
            if (tensors[i] is not { } t) { addresses[i] = IntPtr.Zero; continue; }
            float* data = TensorMemory.Floats(t);
            if (data == null) return false;
            addresses[i] = (IntPtr)data;
        }
        // Float32 views over the module's tensors (owned by them): the reference format of the products; a fused
        // tensor's rows FirstRow.. (Rows of them) are a view at an offset, not a copy.
        WeightMatrix F32(int i, string name)
        {
            long cols = tensors[i]!.shape[1], first = slices[i].FirstRow, rows = slices[i].Rows > 0 ? slices[i].Rows : tensors[i]!.shape[0];
            return new(name, WeightFormat.F32, (int)rows, (int)cols, (byte*)addresses[i] + first * cols * 4, rows * cols * 4, tensors[i]) { KeptPanels = keptPanels };
        }
        embedding = F32(0, LlamaTensors.Embedding);
        finalNorm = (float*)addresses[1];
        finalNormBias = (float*)addresses[4];
        matrices = new WeightMatrix?[config.NumLayers * PerLayer];
        vectors = new IntPtr[config.NumLayers * PerLayer];
        for (int l = 0; l < config.NumLayers; l++)
            foreach (var kind in LlamaTensors.LayerTensors)
            {
                int i = Globals + l * PerLayer + (int)kind;
                if (IsMatrix(kind)) matrices[l * PerLayer + (int)kind] = tensors[i] is null ? null : F32(i, LlamaTensors.Name(l, kind)); // null: fused away
                else vectors[l * PerLayer + (int)kind] = addresses[i] == IntPtr.Zero ? IntPtr.Zero : addresses[i] + (nint)(slices[i].FirstRow * 4);
            }
        validated = true;
        return true;
    }

    int attentionLayer;
    /// <summary>Tokens of a forward whose queries attend together (see <see cref="AttentionRange"/>).</summary>
    const int AttentionTokenBlock = 32;
    bool halfCache;
    // Per-thread scratch of the attention work items: the gathered queries, their scores and row pointers; with a
    // float16 cache, one kv head's keys and values widened to float32.
    [ThreadStatic] static float[]? queryScratch, scoreScratch, keyScratch, valueScratch;
    [ThreadStatic] static IntPtr[]? maskRows, outputRows;

    /// <summary>
    /// Attention for work items [lo, hi) of (row, kv head): the row's new tokens × the kv head's query heads
    /// attend together over that head's cache (<see cref="CpuOps.Attend"/>), each under its own mask row.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    void AttentionRange(int lo, int hi)
    {
        int heads = config.NumHeads, headDim = config.HeadDim, kvHeads = config.NumKvHeads, groups = heads / kvHeads;
        int queries = stepTokens * groups;
        if (queryScratch is null || queryScratch.Length < queries * headDim) queryScratch = GC.AllocateUninitializedArray<float>(queries * headDim, pinned: true);
        long scratch = CpuOps.AttendScratchFloats(queries, stepSlots, headDim, softCapped: attentionSoftCap > 0);
        if (scoreScratch is null || scoreScratch.Length < scratch) scoreScratch = GC.AllocateUninitializedArray<float>((int)Math.Max(scratch + scratch / 2, 4096), pinned: true); // see Ensure
        if (maskRows is null || maskRows.Length < queries) { maskRows = new IntPtr[queries]; outputRows = new IntPtr[queries]; }
        fixed (float* qs = queryScratch, scores = scoreScratch)
        fixed (IntPtr* masks = maskRows, outputs = outputRows)
        {
            for (int item = lo; item < hi; item++)
            {
                int row = item / kvHeads, g = item % kvHeads;
                for (int j = 0; j < stepTokens; j++)
                    for (int hh = 0; hh < groups; hh++)
                    {
                        int i = j * groups + hh;
                        long head = ((long)(row * stepTokens + j) * heads + g * groups + hh) * headDim;
                        CpuOps.CopyFloats(qPtr + head, qs + (long)i * headDim, headDim);
                        outputs[i] = (IntPtr)(attPtr + head);
                        masks[i] = (IntPtr)(maskAddPtr + (long)(row * stepTokens + j) * stepSlots);
                    }
                long cacheHead = (long)g * rowCapacity[row] * headDim;
                nint rowKey = rowKeys[attentionLayer * stepRows + row], rowValue = rowValues[attentionLayer * stepRows + row];
                float* keys = (float*)rowKey + cacheHead, values = (float*)rowValue + cacheHead;
                if (halfCache)
                {
                    // Reads the halves (half the cache bytes of float32) into this thread's float32 scratch of one head.
                    int count = stepSlots * headDim;
                    if (keyScratch is null || keyScratch.Length < count)
                    {
                        keyScratch = GC.AllocateUninitializedArray<float>(Math.Max(count, 4096), pinned: true);
                        valueScratch = GC.AllocateUninitializedArray<float>(keyScratch.Length, pinned: true);
                    }
                    Float16.ToFloats(new ReadOnlySpan<ushort>((ushort*)rowKey + cacheHead, count), keyScratch);
                    Float16.ToFloats(new ReadOnlySpan<ushort>((ushort*)rowValue + cacheHead, count), valueScratch);
                    keys = (float*)System.Runtime.InteropServices.Marshal.UnsafeAddrOfPinnedArrayElement(keyScratch, 0);
                    values = (float*)System.Runtime.InteropServices.Marshal.UnsafeAddrOfPinnedArrayElement(valueScratch!, 0);
                }
                // A long forward (a prefill) attends in blocks of tokens, each over the slots up to the last one any of
                // its tokens may see: under a causal mask that skips the masked upper triangle (about half the work at
                // 512 tokens) instead of computing scores that the mask then zeroes. Likewise from the first slot any of
                // them may see: a sliding window's (Mistral, Gemma's local layers) or a left-padded row's masked prefix.
                for (int j0 = 0; j0 < stepTokens; j0 += AttentionTokenBlock)
                {
                    int j1 = Math.Min(stepTokens, j0 + AttentionTokenBlock), limit = 0, start = stepSlots;
                    for (int j = j0; j < j1; j++)
                    {
                        float* mask = maskAddPtr + (long)(row * stepTokens + j) * stepSlots;
                        int last = stepSlots, firstSeen = 0;
                        while (last > limit && float.IsNegativeInfinity(mask[last - 1])) last--;
                        limit = Math.Max(limit, last);
                        while (firstSeen < start && float.IsNegativeInfinity(mask[firstSeen])) firstSeen++;
                        start = Math.Min(start, firstSeen);
                    }
                    int first = j0 * groups, count = (j1 - j0) * groups;
                    start = Math.Min(start, Math.Max(limit, 1) - 1); // every query sees itself; this only guards the bounds
                    for (int i = first; i < first + count; i++) masks[i] += start * sizeof(float);
                    CpuOps.Attend(qs + (long)first * headDim, count, keys + (long)start * headDim, values + (long)start * headDim,
                                  (float**)masks + first, Math.Max(limit, 1) - start, headDim, scores, (float**)outputs + first,
                                  attentionScale, attentionSoftCap);
                }
            }
        }
    }

    static void Ensure(ref float[] buffer, int size)
    {
        // A half more than asked: the mask's slots grow by one per step, and pinned arrays count toward the full
        // collections' budget — regrown at exact size every step, they brought gen2 pauses into a server's steps.
        if (buffer.Length < size) buffer = GC.AllocateUninitializedArray<float>(checked(size + size / 2), pinned: true);
    }
}
