using System.Text.Json.Nodes;
using Pargs.Checkpoints;
using Pargs.Models;
using Pargs.Models.Families.Gemma;
using Pargs.Tests.Models.Families;
using Pargs.Tokenizers;
using static TorchSharp.torch;

namespace Pargs.Tests.Checkpoints;

/// <summary>
/// llama.cpp as the independent reference for Gemma-2 and Gemma-3. LlamaCppGoldens/gemma2.json and gemma3.json were
/// written by tools/llamacpp-reference/regenerate-goldens.sh (group gemma): <see cref="GemmaReferenceCheckpoints"/> (sliding
/// windows shorter than the text, interleaved local/global layers, soft-caps that bite, GQA, explicit head_dim; Gemma-3
/// with q/k norms, a local rotary base and an untied head) converted by <c>pargs convert --to gguf</c> and evaluated by
/// llama.cpp (node-llama-cpp 3.21.1). Pargs must give the same tokens, the same greedy continuation of 32 tokens, and
/// the same next-token log-probabilities — from the Hugging Face folder and from the GGUF it converted.
/// <para>
/// Where the two differ, and which Pargs follows: llama.cpp's CPU GeGLU takes GELU from a float16 table (the input
/// rounded to float16, the value stored in float16), which moves these models' log-probabilities by up to ~1e-3.
/// Pargs follows transformers (the tanh GELU in float32). <see cref="The_gap_to_llama_cpp_is_its_float16_gelu"/>
/// shows a written reference forward with the exact GELU matches Pargs to 1e-4 and, with ggml's table emulated, lands
/// far closer to llama.cpp: for Gemma-3 within 1e-4 (the whole gap); for Gemma-2 a residual remains (see
/// <see cref="LlamaCppTolerances"/>).
/// </para>
/// </summary>
public class GemmaLlamaCppGoldenTests
{
    const double Tolerance = 1e-4;

    /// <summary>
    /// Pargs (exact GELU) against llama.cpp (float16 GELU table), and the written reference with that table emulated
    /// against llama.cpp. Gemma-3: 5e-3 and 1e-4 (measured 4e-3 and under 1e-4). Gemma-2: 2.5e-2 and 5e-3 (measured
    /// 1.9e-2 and 4.0e-3): with the table emulated exactly, the first five positions agree to 3e-5 and a residual of up
    /// to 4e-3 appears from position 5 on, not explained here (not the window's edge: a window one longer or shorter puts
    /// the reference 10+ away from llama.cpp from the window on). Its final norm gain of ~21 (the tied reference checkpoint's)
    /// magnifies every difference in the hidden state twentyfold; greedy decoding is identical. That residual is float16
    /// rounding ties at the table's input: <see cref="LlamaCppGeluTieTests"/> resolves three of them as llama.cpp did and
    /// lands within 1.7e-4 (Gemma-3: one tie, then 4e-6).
    /// </summary>
    internal static (double Exact, double Emulated) LlamaCppTolerances(string name) => name == "gemma2" ? (2.5e-2, 5e-3) : (5e-3, 1e-4);

    public static TheoryData<string> Names => new() { "gemma2", "gemma3" };

    internal static JsonObject Golden(string name) =>
        JsonNode.Parse(File.ReadAllText(Path.Combine(TestPaths.RepoRoot, "tests", "Pargs.Tests", "Checkpoints", "LlamaCppGoldens", name + ".json")))!.AsObject();

    static double WorstGap(float[][] ours, JsonArray logprobs, out int underflowMisses)
    {
        double worst = 0;
        underflowMisses = 0;
        for (int position = 0; position < ours.Length; position++)
        {
            var row = logprobs[position]!.AsArray();
            for (int token = 0; token < row.Count; token++)
            {
                if (row[token] is null) { if (ours[position][token] > -80) underflowMisses++; }
                else worst = Math.Max(worst, Math.Abs(ours[position][token] - row[token]!.GetValue<double>()));
            }
        }
        return worst;
    }

    [Theory, MemberData(nameof(Names))]
    public void Pargs_matches_llama_cpp_on_the_checkpoint_and_on_its_converted_gguf(string name)
    {
        var golden = Golden(name);
        int[] tokens = golden["tokens"]!.AsArray().Select(n => n!.GetValue<int>()).ToArray();
        int[] greedy = golden["greedy"]!.AsArray().Select(n => n!.GetValue<int>()).ToArray();
        var logprobs = golden["logprobs"]!.AsArray();
        Assert.Equal(32, greedy.Length);

        using var dir = new TempDir();
        string folder = dir.File(name);
        ReferenceCheckpoints.Write(name, folder);
        string gguf = dir.File(name + ".gguf");
        GgufConverter.Convert(folder, gguf, GgufOutputType.F32);

        float[][]? fromFolder = null;
        foreach (string path in new[] { folder, gguf })
        {
            using var contents = CheckpointLoader.Load(path);
            using var lm = CausalLM.FromCheckpoint(contents);
            Assert.Equal(golden["vocab_size"]!.GetValue<int>(), lm.Config.VocabSize);
            var tokenizer = TokenizerLoader.ForCheckpoint(contents);
            Assert.Equal(tokens, tokenizer.Encode(golden["text"]!.GetValue<string>(), golden["add_bos"]!.GetValue<bool>()));

            float[][] ours = LogProbs(lm, tokens);
            double worst = WorstGap(ours, logprobs, out int misses);
            Assert.Equal(0, misses);
            double tolerance = LlamaCppTolerances(name).Exact;
            Assert.True(worst <= tolerance, $"{path}: next-token log-probabilities differ from llama.cpp's by up to {worst:G3} (tolerance {tolerance})");
            Assert.Equal(greedy, Greedy(lm, tokens, 32));
            // The GGUF (norms stored as 1 + w, read back as w) is the same model as the folder.
            if (fromFolder is null) fromFolder = ours;
            else
                for (int i = 0; i < ours.Length; i++)
                    Assert.True(ours[i].Zip(fromFolder[i]).All(p => Math.Abs(p.First - p.Second) < 1e-5), $"position {i}: the converted GGUF and the folder differ");
        }
    }

    [Theory, MemberData(nameof(Names))]
    public void The_gap_to_llama_cpp_is_its_float16_gelu(string name)
    {
        var golden = Golden(name);
        long[] tokens = golden["tokens"]!.AsArray().Select(n => (long)n!.GetValue<int>()).ToArray();
        var logprobs = golden["logprobs"]!.AsArray();
        using var dir = new TempDir();
        ReferenceCheckpoints.Write(name, dir.File(name));
        var json = JsonNode.Parse(File.ReadAllText(Path.Combine(dir.File(name), HuggingFaceFolder.ConfigFile)))!.AsObject();
        using var contents = CheckpointLoader.Load(dir.File(name));
        using var lm = CausalLM.FromCheckpoint(contents);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        float[][] Rows(Tensor logits) => Enumerable.Range(0, tokens.Length)
            .Select(i => logits.to(ScalarType.Float64).log_softmax(-1)[i].to(ScalarType.Float32).data<float>().ToArray()).ToArray();
        var emulated = Rows(GemmaReferenceForward.Logits(json, contents.Tensors, tokens, GemmaReferenceForward.Float16Gelu));
        var exact = Rows(GemmaReferenceForward.Logits(json, contents.Tensors, tokens));
        var ours = LogProbs(lm, tokens.Select(t => (int)t).ToArray());

        double emulatedGap = WorstGap(emulated, logprobs, out _);
        double exactGap = WorstGap(exact, logprobs, out _);
        double oursToExact = ours.Zip(exact).Max(r => r.First.Zip(r.Second).Max(p => (double)Math.Abs(p.First - p.Second)));
        Assert.True(oursToExact <= Tolerance, $"Pargs differs from the written reference by {oursToExact:G3}");
        double emulatedTolerance = LlamaCppTolerances(name).Emulated;
        Assert.True(emulatedGap <= emulatedTolerance, $"with llama.cpp's float16 GELU emulated the reference is still {emulatedGap:G3} from llama.cpp (tolerance {emulatedTolerance})");
        Assert.True(exactGap > 4 * emulatedGap, $"the exact GELU is as close ({exactGap:G3}) as the emulated one ({emulatedGap:G3}): the explanation does not hold");
    }

    /// <summary>log_softmax of the logits after every position, one forward over the whole sequence.</summary>
    static float[][] LogProbs(CausalLM lm, int[] tokens)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var ids = tensor(tokens.Select(t => (long)t).ToArray(), [1, tokens.Length]);
        var logProbs = lm.Logits(ids).to(ScalarType.Float64).log_softmax(-1)[0];
        return Enumerable.Range(0, tokens.Length).Select(i => logProbs[i].to(ScalarType.Float32).data<float>().ToArray()).ToArray();
    }

    /// <summary>Greedy by recomputing the whole sequence each step: the plain definition, independent of the KV cache.</summary>
    static int[] Greedy(CausalLM lm, int[] prompt, int count)
    {
        var ids = prompt.ToList();
        using var _ = no_grad();
        for (int step = 0; step < count; step++)
        {
            using var scope = NewDisposeScope();
            var input = tensor(ids.Select(t => (long)t).ToArray(), [1, ids.Count]);
            ids.Add((int)lm.Logits(input)[0, -1].argmax().item<long>());
        }
        return ids.Skip(prompt.Length).ToArray();
    }
}
