using Pargs.Checkpoints;
using Pargs.Models;
using Pargs.Models.Cpu;
using Pargs.Weights;
using static TorchSharp.torch;

namespace Pargs.Tests.Models;

/// <summary>
/// The decode kernel on weights in their stored precision (<see cref="LlamaDecodeKernelTests"/> covers the float32
/// kernel against torch): each format against the float32 kernel on the dequantized weights, and checkpoints
/// loaded mapped (<see cref="CausalLM.LoadForInference"/>) against the same files loaded as float32.
/// </summary>
public class StoredPrecisionTests
{
    /// <summary>Widths every block format divides (K-quants: 256-element super-blocks), GQA, q/k/v biases (Qwen2).</summary>
    internal static ModelConfig Config(bool qwen2) => (qwen2 ? TinyModels.Qwen2Config() : TinyModels.LlamaConfig(vocab: 67)) with
    {
        HiddenSize = 256, IntermediateSize = 512, NumHeads = 4, NumKvHeads = 2,
    };

    /// <summary>The model's tensors with every matrix (embedding and head included) stored in <paramref name="format"/>, vectors in float32.</summary>
    internal static StoredTensors Store(CausalLM model, WeightFormat format)
    {
        var weights = new StoredTensors($"(test, {WeightFormats.Name(format)})");
        foreach (var (name, p) in model.named_parameters())
        {
            var values = p.contiguous().data<float>().ToArray();
            if (p.dim() == 1) weights.AddVector(name, WeightMatrix.Quantize(name, WeightFormat.F32, values, 1, values.Length));
            else weights.AddMatrix(name, WeightMatrix.Quantize(name, format, values, (int)p.shape[0], (int)p.shape[1]));
        }
        return weights;
    }

    /// <summary>
    /// A float32 model whose matrices are the stored ones dequantized, its vectors the original's (the same seed):
    /// the reference a stored format is held to.
    /// </summary>
    internal static CausalLM Dequantized(ModelConfig config, long seed, StoredTensors weights)
    {
        var model = TinyModels.RandomLM(config, seed);
        using var _ = no_grad();
        foreach (var (name, p) in model.named_parameters())
            if (p.dim() == 2) p.copy_(tensor(weights.Matrix(name).Dequantize(), p.shape));
        return model;
    }

    /// <summary>Prefill a ragged batch, take steps, score siblings, commit one, step again: logits of every stage, then layer 0's cache.</summary>
    internal static List<Tensor> Decode(CausalLM model)
    {
        using var _ = no_grad();
        var c = model.Config;
        int[][] prompts = { TinyModels.Tokens(5, c.VocabSize, 1), TinyModels.Tokens(2, c.VocabSize, 2), TinyModels.Tokens(7, c.VocabSize, 3) };
        using var session = new BatchSession(model.Backbone, prompts.Length, initialCapacity: 4);
        var outputs = new List<Tensor> { model.LogitsFromHidden(session.Prefill(prompts)) };
        for (int s = 0; s < 3; s++)
            outputs.Add(model.LogitsFromHidden(session.Step(tensor(new long[] { 3 + s, 10 + s, 20 + s }))));
        outputs.Add(model.LogitsFromHidden(session.Siblings(tensor(new long[] { 4, 5, 6, 7, 8, 9, 11, 12, 13 }, 3, 3))));
        session.CommitSibling(new long[] { 2, 0, 1 });
        outputs.Add(model.LogitsFromHidden(session.Step(tensor(new long[] { 14, 15, 16 }))));
        var (keys, values) = session.Cache.Write(0, zeros(3, c.NumKvHeads, 0, c.HeadDim), zeros(3, c.NumKvHeads, 0, c.HeadDim));
        outputs.Add(keys.clone());
        outputs.Add(values.clone());
        return outputs;
    }

    /// <summary>max |a − b| / max |b| over every stage.</summary>
    internal static float WorstRelative(List<Tensor> actual, List<Tensor> reference)
    {
        Assert.Equal(reference.Count, actual.Count);
        float worst = 0;
        for (int i = 0; i < reference.Count; i++)
            worst = Math.Max(worst, (actual[i] - reference[i]).abs().max().item<float>() / reference[i].abs().max().item<float>());
        return worst;
    }

    // Each format against the float32 kernel on the dequantized weights. Float formats: the same products on the
    // same values in another summation order, so the torch-built float32 model is the reference (1e-4 relative).
    // Integer formats multiply against the activation row quantized to 8 bits (Q8_0 for Q8_0/Q4_0, Q8_K for
    // K-quants) as llama.cpp does; without that rounding in the reference these random 256-wide models differ
    // by 4-18% of the largest logit (rounding compounds through attention). So their reference is the float32
    // product on the dequantized weights with the activations rounded the same way
    // (WeightMatrix.WithActivationRounding). That is 1e-4 close for one product, but across 2 layers the two runs'
    // inputs differ by float summation order (~1e-6), and an input that sits on a rounding boundary rounds to the
    // next 8-bit step on one side only (a jump of 1/127 of its block's largest value), which attention then
    // amplifies: measured 0.75-1.4% of the largest logit for Q8_0/Q4_0/Q4_K, below 1e-4 for Q5_K/Q6_K. Hence
    // 3e-2 for the integer formats; a wrong block, scale or row moves logits by their whole size (≈1), and the
    // products themselves are held exactly to ggml's (QuantizedDotTests, GgmlGoldenTests).
    // The last argument: small forwards split over the threads (SerialWork 0) instead of computing on one.
    public static TheoryData<string, bool, int, bool> Formats => new()
    {
        { "f32", false, 1, false }, { "f16", true, 1, false }, { "bf16", false, 2, false }, { "q8_0", true, 1, false }, { "q8_0", false, 2, false },
        { "q4_0", false, 1, false }, { "q4_K", true, 1, false }, { "q5_K", false, 1, false }, { "q6_K", false, 2, false },
        { "bf16", false, 2, true }, { "q8_0", false, 2, true }, { "q6_K", false, 2, true },
    };

    internal static WeightFormat Parse(string name) => Enum.GetValues<WeightFormat>().First(f => WeightFormats.Name(f) == name);

    /// <summary>The stored model's matrices dequantized into float32 views whose products round activations as the integer format does.</summary>
    internal static CausalLM RoundedReference(ModelConfig config, StoredTensors stored)
    {
        var weights = new StoredTensors("(test, float32 with rounded activations)");
        var names = ExpectedTensors.For(config, null).Select(e => e.Name);
        foreach (string name in names)
        {
            if (stored.Shape(name)!.Length == 1) { weights.AddVector(name, VectorOf(stored, name)); continue; }
            var m = stored.Matrix(name);
            var f32 = WeightMatrix.Quantize(name, WeightFormat.F32, m.Dequantize(), m.Rows, m.Cols);
            weights.AddMatrix(name, f32.WithActivationRounding(WeightCodec.ActivationFormat(m.Format)!.Value));
        }
        return CausalLM.FromStored(config, weights, "(reference)");
    }

    static unsafe WeightMatrix VectorOf(StoredTensors stored, string name)
    {
        int length = (int)stored.Shape(name)![0];
        return WeightMatrix.Quantize(name, WeightFormat.F32, new ReadOnlySpan<float>(stored.Vector(name), length), 1, length);
    }

    [Theory, MemberData(nameof(Formats))]
    public void Each_stored_format_decodes_like_float32_on_the_dequantized_weights(string formatName, bool qwen2, int threads, bool splitSmallForwards)
    {
        var format = Parse(formatName);
        var config = Config(qwen2);
        using var original = TinyModels.RandomLM(config, seed: 31);
        using var stored = CausalLM.FromStored(config, Store(original, format), "(test)");
        bool integer = WeightCodec.ActivationFormat(format) is not null;
        using var reference = integer ? RoundedReference(config, stored.StoredWeights!) : Dequantized(config, 31, stored.StoredWeights!);
        Assert.Empty(stored.parameters()); // no float32 copy of the model
        var expected = Decode(reference);
        long before = CpuKernels.ForwardsOnThisThread;
        List<Tensor> actual;
        using (CpuThreads.Scoped(threads))
        using (LlamaDecodeKernelTests.SplitSmallForwards(splitSmallForwards))
            actual = Decode(stored);
        Assert.True(CpuKernels.ForwardsOnThisThread - before >= 6, "the stored-precision kernel did not run");
        float tolerance = format == WeightFormat.F32 ? 1e-5f : integer ? 3e-2f : 1e-4f;
        float worst = WorstRelative(actual, expected);
        Assert.True(worst <= tolerance, $"{formatName}: max relative |stored − float32 on dequantized| = {worst} > {tolerance}");
    }

    [Fact]
    public void A_stored_model_runs_cache_free_forwards_and_with_kernels_suppressed()
    {
        var config = Config(qwen2: false);
        using var original = TinyModels.RandomLM(config, seed: 8);
        using var stored = CausalLM.FromStored(config, Store(original, WeightFormat.F32), "(test)");
        using var _ = no_grad();
        var ids = tensor(new long[] { 1, 5, 9, 3, 4, 8 }, 2, 3);
        var valid = tensor(new[] { false, true, true, true, true, true }, 2, 3);
        var expected = original.Logits(ids, valid);
        Tensor actual;
        using (CpuKernels.Suppress()) actual = stored.Logits(ids, valid); // no torch twin: the kernel runs anyway
        // Row 0's first position is padding (it attends to nothing): only real positions are compared.
        float diff = Math.Max((actual[0].narrow(0, 1, 2) - expected[0].narrow(0, 1, 2)).abs().max().item<float>(),
                              (actual[1] - expected[1]).abs().max().item<float>());
        Assert.True(diff <= 1e-4f, $"cache-free forward: max |stored − torch| = {diff}");
        Assert.Throws<PargsException>(() => stored.Backbone.TokenEmbeddingWeight);
    }

    /// <summary>The tiny seeded reference checkpoints (with tokenizers) as an HF folder and converted to GGUF.</summary>
    static string Folder(string root, string name)
    {
        string dir = Path.Combine(root, name);
        ReferenceCheckpoints.Write(name, dir);
        return dir;
    }

    static List<Tensor> PromptLogits(CausalLM model)
    {
        using var _ = no_grad();
        var prompt = model.Tokenizer!.Encode(ReferenceCheckpoints.PromptText, addBos: true);
        using var session = new BatchSession(model.Backbone, 1);
        var outputs = new List<Tensor> { model.LogitsFromHidden(session.Prefill([prompt])) };
        for (int s = 0; s < 3; s++) outputs.Add(model.LogitsFromHidden(session.Step(tensor(new long[] { 5 + s }))));
        return outputs;
    }

    [Theory]
    [InlineData("llama", "f16")] // Meta's rotary layout: q/k rows reordered in the view
    [InlineData("qwen2", "bf16")] // biases, tied embedding
    [InlineData("mistral", "f32")]
    public void A_gguf_loaded_mapped_decodes_like_the_same_file_loaded_as_float32(string name, string type)
    {
        using var temp = new TempDir();
        string gguf = Path.Combine(temp.Path, $"{name}-{type}.gguf");
        GgufConverter.Convert(Folder(temp.Path, name), gguf, GgufConverter.ParseType(type));
        using var mapped = CausalLM.LoadForInference(gguf);
        using var float32 = CausalLM.Load(gguf);
        Assert.NotNull(mapped.StoredWeights);
        Assert.Empty(mapped.parameters());
        float worst = WorstRelative(PromptLogits(mapped), PromptLogits(float32));
        Assert.True(worst <= 1e-4f, $"{name} {type}: max relative |mapped − float32| = {worst}");
    }

    [Fact]
    public void A_safetensors_folder_loaded_mapped_decodes_like_the_float32_load()
    {
        using var temp = new TempDir();
        string dir = Folder(temp.Path, "qwen2");
        using var mapped = CausalLM.LoadForInference(dir);
        using var float32 = CausalLM.Load(dir);
        Assert.NotNull(mapped.StoredWeights);
        float worst = WorstRelative(PromptLogits(mapped), PromptLogits(float32));
        Assert.True(worst <= 1e-5f, $"max relative |mapped − float32| = {worst}");
    }

    [Fact]
    public void Formats_without_a_stored_kernel_load_as_float32()
    {
        using var temp = new TempDir();
        using var gpt2 = CausalLM.LoadForInference(Folder(temp.Path, "gpt2"));
        Assert.Null(gpt2.StoredWeights);
        Assert.NotEmpty(gpt2.parameters());
    }

    [Fact]
    public void A_gguf_with_truncated_block_data_or_an_unknown_type_is_an_error_naming_the_tensor()
    {
        using var temp = new TempDir();
        string gguf = Path.Combine(temp.Path, "llama.gguf");
        GgufConverter.Convert(Folder(temp.Path, "llama"), gguf, GgufOutputType.F16);
        var bytes = File.ReadAllBytes(gguf);
        var last = GgufFile.Read(gguf).Tensors.MaxBy(t => t.Offset)!;

        string truncated = Path.Combine(temp.Path, "truncated.gguf");
        File.WriteAllBytes(truncated, bytes[..(int)(last.Offset + 10)]);
        var e = Assert.Throws<PargsException>(() => CausalLM.LoadForInference(truncated));
        Assert.Contains($"\"{last.Name}\"", e.Message);

        // The type field follows the name, the dimension count and the dimensions in the tensor's header entry.
        const string name = "blk.0.attn_q.weight";
        var nameBytes = System.Text.Encoding.UTF8.GetBytes(name);
        int at = bytes.AsSpan().IndexOf(nameBytes) + nameBytes.Length;
        int dims = BitConverter.ToInt32(bytes, at);
        int typeAt = at + 4 + 8 * dims;
        Assert.Equal((uint)GgmlType.F16, BitConverter.ToUInt32(bytes, typeAt));
        BitConverter.GetBytes(99u).CopyTo(bytes, typeAt);
        string unknown = Path.Combine(temp.Path, "unknown.gguf");
        File.WriteAllBytes(unknown, bytes);
        e = Assert.Throws<PargsException>(() => CausalLM.LoadForInference(unknown));
        Assert.Contains(name, e.Message);
    }

    [Fact]
    public void Weights_that_do_not_fit_the_available_memory_are_refused_with_a_type_that_would()
    {
        var config = Config(qwen2: false);
        using var original = TinyModels.RandomLM(config, seed: 3);
        using var weights = Store(original, WeightFormat.F32);
        StoredCheckpoint.CheckFits(weights, "m.gguf", availableBytes: weights.Bytes); // exactly fits
        var e = Assert.Throws<PargsException>(() => StoredCheckpoint.CheckFits(weights, "m.gguf", availableBytes: weights.Bytes / 3));
        Assert.Contains("m.gguf", e.Message);
        Assert.Contains("--type q8_0", e.Message); // 1.06 of 4 bytes per weight fits a third; bf16 does not
        e = Assert.Throws<PargsException>(() => StoredCheckpoint.CheckFits(weights, "m.gguf", availableBytes: weights.Bytes / 100));
        Assert.Contains("no file type", e.Message);
    }

    [Fact]
    public void Meta_row_order_is_the_permutation_of_MetaRotaryLayout()
    {
        int heads = 3, rows = 3 * 8, cols = 5;
        var w = HeldScalars.Arange(rows * cols, ScalarType.Float32).view(rows, cols);
        using var hf = MetaRotaryLayout.ToHuggingFace(w, heads);
        var order = StoredCheckpoint.HuggingFaceRowOrder(rows, heads);
        var expected = hf.data<float>().ToArray();
        var stored = WeightMatrix.Quantize("w", WeightFormat.F32, w.data<float>().ToArray(), rows, cols).WithRowOrder(order);
        Assert.Equal(expected, stored.Dequantize());
    }
}
