using Pargs.Checkpoints;
using Pargs.Models;
using Pargs.Weights;

namespace Pargs.Tests.Checkpoints;

/// <summary>
/// <c>pargs convert --type q8_0 | q4_0</c>: which tensors llama.cpp's rules keep at higher precision, that the
/// stored blocks are ggml's reference quantization of the weights (byte for byte, through the quantizers tested
/// against ggml in GgmlGoldenTests), and that Pargs decodes the file in its stored formats.
/// </summary>
public class GgufQuantizationTests
{
    [Fact]
    public void Llama_cpp_type_rules_for_q8_0_and_q4_0_files()
    {
        // The head (or the tied embedding): Q8_0 in a Q8_0 file; Q6_K in a Q4_0 file when its rows are whole super-blocks, else Q8_0.
        Assert.Equal(GgmlType.Q8_0, GgufQuantization.TypeOf("output.weight", [1000, 512], GgufOutputType.Q8_0, false, "m"));
        Assert.Equal(GgmlType.Q6_K, GgufQuantization.TypeOf("output.weight", [1000, 512], GgufOutputType.Q4_0, false, "m"));
        Assert.Equal(GgmlType.Q8_0, GgufQuantization.TypeOf("output.weight", [1000, 896], GgufOutputType.Q4_0, false, "m"));
        Assert.Equal(GgmlType.Q6_K, GgufQuantization.TypeOf("token_embd.weight", [1000, 512], GgufOutputType.Q4_0, true, "m"));
        // An untied embedding and every other matrix take the file's type; vectors stay F32.
        Assert.Equal(GgmlType.Q4_0, GgufQuantization.TypeOf("token_embd.weight", [1000, 512], GgufOutputType.Q4_0, false, "m"));
        Assert.Equal(GgmlType.Q4_0, GgufQuantization.TypeOf("blk.3.ffn_down.weight", [512, 1024], GgufOutputType.Q4_0, false, "m"));
        Assert.Equal(GgmlType.F32, GgufQuantization.TypeOf("blk.3.attn_norm.weight", [512], GgufOutputType.Q8_0, false, "m"));
        // Rows that are not whole 32-value blocks have no fallback for these types in llama.cpp: refused, naming the tensor.
        var e = Assert.Throws<PargsException>(() => GgufQuantization.TypeOf("blk.0.ffn_down.weight", [64, 112], GgufOutputType.Q4_0, false, "m"));
        Assert.Contains("\"blk.0.ffn_down.weight\"", e.Message);
        Assert.Contains("112", e.Message);
    }

    [Theory]
    [InlineData("q8_0", 7L, GgmlType.Q8_0)]
    [InlineData("q4_0", 2L, GgmlType.Q4_0)]
    public void A_quantized_gguf_holds_ggml_blocks_of_the_weights_and_decodes_in_them(string typeName, long fileType, GgmlType matrixType)
    {
        using var dir = new TempDir();
        string folder = dir.File("llama");
        ReferenceCheckpoints.Write("llama", folder);
        string path = dir.File($"llama-{typeName}.gguf");
        GgufConverter.Convert(folder, path, GgufConverter.ParseType(typeName));

        var gguf = GgufFile.Read(path);
        Assert.Equal(fileType, gguf.GetInteger("general.file_type"));
        foreach (var t in gguf.Tensors)
        {
            // The head's rows (64 values) are not whole 256-value super-blocks, so it is Q8_0 in both files.
            var expected = t.Shape.Length == 1 ? GgmlType.F32 : t.Name == "output.weight" ? GgmlType.Q8_0 : matrixType;
            Assert.True(expected == t.Type, $"{t.Name}: {t.Type}, expected {expected}");
        }

        // Bytes as ggml's reference quantizer writes them (q/k are permuted to Meta's layout first; ffn_up is not).
        using var hf = HuggingFaceFolder.Load(folder);
        var up = hf.Tensors["model.layers.1.mlp.up_proj.weight"];
        var info = gguf.Find("blk.1.ffn_up.weight")!;
        var expectedBytes = WeightMatrix.Quantize("up", (WeightFormat)(uint)matrixType, up.data<float>().ToArray(), (int)up.shape[0], (int)up.shape[1]);
        using (var mapped = MappedFile.Open(path))
        {
            var stored = mapped.Matrix(info);
            Assert.Equal(expectedBytes.ByteLength, stored.ByteLength);
            unsafe
            {
                Assert.True(new ReadOnlySpan<byte>(expectedBytes.Data, (int)expectedBytes.ByteLength)
                    .SequenceEqual(new ReadOnlySpan<byte>(stored.Data, (int)stored.ByteLength)), "blk.1.ffn_up.weight differs from ggml's quantization");
            }
        }

        // Decoded in its stored formats, with no float32 copy; the float32 loader reads the same file too.
        using var lm = CausalLM.LoadForInference(path);
        Assert.Equal((WeightFormat)(uint)matrixType, lm.StoredWeights!.FormatOf("model.layers.0.self_attn.q_proj.weight"));
        Assert.Equal(WeightFormat.Q8_0, lm.StoredWeights.FormatOf("lm_head.weight"));
        Assert.Empty(lm.parameters());
        using var float32 = CausalLM.Load(path);
        Assert.Equal(lm.Config.VocabSize, float32.Config.VocabSize);
    }

    [Fact]
    public void Llama_cpp_type_rules_for_q4_k_m_files()
    {
        // use_more_bits over 16 layers (Llama-3.2-1B): layers 0, 1, 14, 15 and every third from 2 — llama-quantize's
        // well-known Q4_K_M pattern of Q6_K attn_v / ffn_down.
        int[] moreBits = Enumerable.Range(0, 16).Where(i => GgufQuantization.UseMoreBits(i, 16)).ToArray();
        Assert.Equal([0, 1, 4, 7, 10, 13, 14, 15], moreBits);
        // 32 layers (Llama-3.1-8B): 0-3, 28-31 and 6, 9, ..., 27.
        Assert.Equal([0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31], Enumerable.Range(0, 32).Where(i => GgufQuantization.UseMoreBits(i, 32)));
        foreach (var (name, expected) in new[]
        {
            ("blk.4.attn_v.weight", GgmlType.Q6_K), ("blk.5.attn_v.weight", GgmlType.Q4_K), ("blk.13.ffn_down.weight", GgmlType.Q6_K),
            ("blk.12.ffn_down.weight", GgmlType.Q4_K), ("blk.0.attn_q.weight", GgmlType.Q4_K), ("blk.0.attn_k.weight", GgmlType.Q4_K),
            ("blk.0.attn_output.weight", GgmlType.Q4_K), ("blk.0.ffn_gate.weight", GgmlType.Q4_K), ("blk.0.ffn_up.weight", GgmlType.Q4_K),
            ("token_embd.weight", GgmlType.Q4_K), ("output.weight", GgmlType.Q6_K),
        })
            Assert.True(expected == GgufQuantization.TypeOf(name, [2048, 2048], GgufOutputType.Q4_K_M, false, "m", layers: 16), name);
        Assert.Equal(GgmlType.Q6_K, GgufQuantization.TypeOf("token_embd.weight", [1000, 2048], GgufOutputType.Q4_K_M, true, "m", 16));
        // Rows of 896 (Qwen2.5-0.5B): a Q6_K tensor falls back to Q8_0 as in llama.cpp; Q4_K would fall back to Q5_0,
        // which Pargs does not write: refused by name.
        Assert.Equal(GgmlType.Q8_0, GgufQuantization.TypeOf("blk.0.attn_v.weight", [128, 896], GgufOutputType.Q4_K_M, false, "m", 24));
        var e = Assert.Throws<PargsException>(() => GgufQuantization.TypeOf("blk.2.attn_q.weight", [896, 896], GgufOutputType.Q4_K_M, false, "m", 24));
        Assert.Contains("\"blk.2.attn_q.weight\"", e.Message);
        Assert.Contains("q5_0", e.Message);
    }

    [Fact]
    public void A_q4_k_gguf_holds_llama_quantize_blocks_and_decodes_in_them()
    {
        using var dir = new TempDir();
        string folder = dir.File("llama-256");
        ReferenceCheckpoints.Write("llama-256", folder);
        string path = dir.File("llama-256-q4_k.gguf");
        GgufConverter.Convert(folder, path, GgufConverter.ParseType("q4_k"));
        var gguf = GgufFile.Read(path);
        Assert.Equal(15L, gguf.GetInteger("general.file_type")); // LLAMA_FTYPE_MOSTLY_Q4_K_M
        foreach (var t in gguf.Tensors)
        {
            // 2 layers: use_more_bits picks layer 1 only (1 ≥ 7·2/8 = 1); layer 0 is neither < 2/8 = 0 nor (0 − 0) % 3 = 2.
            bool more = t.Name is "blk.1.attn_v.weight" or "blk.1.ffn_down.weight" or "output.weight";
            var expected = t.Shape.Length == 1 ? GgmlType.F32 : more ? GgmlType.Q6_K : GgmlType.Q4_K;
            Assert.True(expected == t.Type, $"{t.Name}: {t.Type}, expected {expected}");
        }
        using var hf = HuggingFaceFolder.Load(folder);
        foreach (var (hfName, ggufName, format) in new[] { ("model.layers.0.mlp.down_proj.weight", "blk.0.ffn_down.weight", WeightFormat.Q4_K), ("model.layers.1.mlp.down_proj.weight", "blk.1.ffn_down.weight", WeightFormat.Q6_K) })
        {
            var w = hf.Tensors[hfName];
            var expectedBytes = WeightMatrix.Quantize(hfName, format, w.data<float>().ToArray(), (int)w.shape[0], (int)w.shape[1]);
            using var mapped = MappedFile.Open(path);
            var stored = mapped.Matrix(gguf.Find(ggufName)!);
            unsafe
            {
                Assert.True(new ReadOnlySpan<byte>(expectedBytes.Data, (int)expectedBytes.ByteLength)
                    .SequenceEqual(new ReadOnlySpan<byte>(stored.Data, (int)stored.ByteLength)), $"{ggufName} differs from ggml's quantization");
            }
        }
        using var lm = CausalLM.LoadForInference(path);
        Assert.Equal(WeightFormat.Q4_K, lm.StoredWeights!.FormatOf("model.layers.0.self_attn.q_proj.weight"));
        Assert.Equal(WeightFormat.Q6_K, lm.StoredWeights.FormatOf("model.layers.1.self_attn.v_proj.weight"));
        Assert.Empty(lm.parameters());
    }

    [Fact]
    public void A_model_whose_rows_are_not_whole_blocks_is_refused_for_q4_0()
    {
        using var dir = new TempDir();
        string folder = dir.File("qwen2");
        ReferenceCheckpoints.Write("qwen2", folder); // intermediate size 112
        var e = Assert.Throws<PargsException>(() => GgufConverter.Convert(folder, dir.File("q.gguf"), GgufOutputType.Q4_0));
        Assert.Contains("ffn_down.weight", e.Message);
        Assert.False(File.Exists(dir.File("q.gguf")));
    }
}

/// <summary>
/// <c>pargs reference-checkpoint NAME --gguf-type T</c>: the seeded weights written straight to GGUF one tensor at a
/// time (real-size shapes without their float32 copy) give the very file that writing the folder and converting it gives.
/// </summary>
public class StreamedReferenceGgufTests
{
    [Theory]
    [InlineData("llama", "q8_0", false)]
    [InlineData("llama-256", "q4_k", false)]
    [InlineData("qwen2", "bf16", false)]
    [InlineData("llama", "f16", true)]
    public void Streaming_writes_the_bytes_convert_writes_from_the_folder(string name, string type, bool rewardModel)
    {
        using var dir = new TempDir();
        // Convert names the file after the folder; the streamed writer after the checkpoint (+ "-rm").
        string folder = dir.File(name + (rewardModel ? "-rm" : ""));
        ReferenceCheckpoints.Write(name, folder, rewardModel);
        string converted = dir.File("converted.gguf"), streamed = dir.File("streamed.gguf");
        GgufConverter.Convert(folder, converted, GgufConverter.ParseType(type));
        ReferenceCheckpoints.WriteGguf(name, streamed, GgufConverter.ParseType(type), rewardModel);
        Assert.True(File.ReadAllBytes(converted).AsSpan().SequenceEqual(File.ReadAllBytes(streamed)), $"{name} {type}: the streamed GGUF differs from the converted folder");
        Assert.Equal(rewardModel, GgufFile.Read(streamed).Tensors.Any(t => t.Name == StoredCheckpoint.GgufScoreTensor));
        Assert.Single(Directory.GetFileSystemEntries(dir.Path), e => e.EndsWith("streamed.gguf")); // no scratch left behind
    }
}
