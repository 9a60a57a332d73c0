using System.Text.Json.Nodes;
using Pargs.Checkpoints;
using Pargs.Models;
using static TorchSharp.torch;

namespace Pargs.Tests.Checkpoints;

/// <summary>
/// Quantized files Pargs writes, evaluated by llama.cpp: LlamaCppGoldens/llama-q8_0.json, llama-q4_0.json and
/// llama-256-q4_k.json were written by tools/llamacpp-reference/regenerate-goldens.sh from the reference llama checkpoint
/// (llama-256: widened to whole K-quant super-blocks) converted with <c>pargs convert --type q8_0 | q4_0 | q4_k</c>
/// (so llama.cpp loads them), evaluated by llama.cpp (node-llama-cpp
/// 3.21.1, float32 KV cache). Pargs converts the same checkpoint again (the quantizers are deterministic) and
/// decodes it in its stored formats (<see cref="CausalLM.LoadForInference"/>).
/// </summary>
public class LlamaCppQuantizedGoldenTests
{
    // Both engines quantize each activation row to Q8_0 and multiply as integers, so only float summation order
    // separates them (an input on a rounding boundary could round one 8-bit step apart: StoredPrecisionTests).
    // Measured: max |Δ log-prob| 3.2e-6 at Q8_0 and 4.1e-6 at Q4_0, against 0.51 (Q8_0) and 6.4 (Q4_0) between
    // llama.cpp on the file and Pargs on the float32 checkpoint — the formats' own noise on this random model.
    // The bound is the float goldens' 1e-4.
    // Q4_K_M (llama-256-q4_k.json, `pargs convert --type q4_k` of the reference llama widened to 256: Q4_K matrices,
    // Q6_K attn_v/ffn_down of layer 1 and the head, against activations quantized to Q8_K as llama.cpp does):
    // max |Δ log-prob| 6.0e-6, against 4.6 between llama.cpp on the file and Pargs on the float32 checkpoint.
    [Theory]
    [InlineData("q8_0", 1e-4, "llama")]
    [InlineData("q4_0", 1e-4, "llama")]
    [InlineData("q4_k", 1e-4, "llama-256")]
    public void Pargs_decodes_its_quantized_gguf_as_llama_cpp_does(string type, double tolerance, string checkpoint)
    {
        var golden = JsonNode.Parse(File.ReadAllText(Path.Combine(TestPaths.RepoRoot, "tests", "Pargs.Tests", "Checkpoints", "LlamaCppGoldens", $"{checkpoint}-{type}.json")))!.AsObject();
        int[] tokens = golden["tokens"]!.AsArray().Select(n => n!.GetValue<int>()).ToArray();
        var logprobs = golden["logprobs"]!.AsArray();

        using var dir = new TempDir();
        string folder = dir.File(checkpoint);
        ReferenceCheckpoints.Write(checkpoint, folder);
        string gguf = dir.File($"{checkpoint}-{type}.gguf");
        GgufConverter.Convert(folder, gguf, GgufConverter.ParseType(type));
        using var lm = CausalLM.LoadForInference(gguf);
        Assert.NotNull(lm.StoredWeights);
        Assert.Equal(tokens, lm.Tokenizer!.Encode(golden["text"]!.GetValue<string>(), golden["add_bos"]!.GetValue<bool>()));

        float[][] ours = LogProbs(lm, tokens);
        using var float32Model = CausalLM.Load(folder);
        float[][] unquantized = LogProbs(float32Model, tokens);
        double worst = 0, noise = 0;
        for (int position = 0; position < tokens.Length; position++)
        {
            var row = logprobs[position]!.AsArray();
            for (int token = 0; token < row.Count; token++)
            {
                if (row[token] is null) { Assert.True(ours[position][token] < -80); continue; }
                double theirs = row[token]!.GetValue<double>();
                worst = Math.Max(worst, Math.Abs(ours[position][token] - theirs));
                noise = Math.Max(noise, Math.Abs(unquantized[position][token] - theirs));
            }
        }
        Assert.True(worst <= tolerance, $"{type}: max |Pargs − llama.cpp| log-prob = {worst} (the format's own noise against float32: {noise})");
        Assert.True(noise > 10 * worst, $"{type}: the quantization noise {noise} should dwarf the engines' difference {worst}");
    }

    static float[][] LogProbs(CausalLM lm, int[] tokens)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var ids = tensor(tokens.Select(t => (long)t).ToArray(), [1, tokens.Length]);
        var logProbs = lm.Logits(ids).to(ScalarType.Float64).log_softmax(-1)[0];
        return Enumerable.Range(0, tokens.Length).Select(i => logProbs[i].to(ScalarType.Float32).data<float>().ToArray()).ToArray();
    }
}
