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
