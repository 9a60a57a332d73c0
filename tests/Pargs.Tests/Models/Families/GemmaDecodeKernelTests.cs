using System.Runtime.Intrinsics;
using System.Text.Json.Nodes;
using Pargs.Checkpoints;
using Pargs.Models;
using Pargs.Models.Cpu;
using Pargs.Models.Families.Gemma;
using Pargs.Tests.Checkpoints;
using static TorchSharp.torch;

namespace Pargs.Tests.Models.Families;

/// <summary>
/// Gemma-2 and Gemma-3 on the CPU decode kernel (<see cref="GemmaDecodeKernel"/>) against their torch forward (the
/// reference path, itself checked against llama.cpp and a written reference): tiny random folders with every structural
/// field set — GQA, head_dim apart from hidden/heads, query_pre_attn_scalar apart from head_dim, attention biases,
/// attention and final soft-caps that bite, sliding layers interleaved with global ones under a window shorter than the
/// text, Gemma-3's q/k norms, local rotary base and scaled global rotary. Every stage (a ragged prefill, steps, sibling
/// candidates, a commit, the cache contents) within 1e-5 of the values' scale; 32 greedy tokens of two rows of different
/// lengths identical; the llama.cpp goldens of <see cref="GemmaLlamaCppGoldenTests"/> met through the kernel as well.
/// </summary>
public unsafe class GemmaDecodeKernelTests
{
    public static TheoryData<string, int> Cases => new()
    {
        { "gemma2", 1 }, { "gemma2", 2 }, { "gemma3", 1 }, { "gemma3", 2 }, { "gemma3-head16", 1 },
    };

    static ModelConfig Config(string name)
    {
        var json = new JsonObject
        {
            ["vocab_size"] = 40, ["hidden_size"] = 32, ["intermediate_size"] = 48, ["num_hidden_layers"] = 4,
            ["num_attention_heads"] = 4, ["num_key_value_heads"] = 2, ["head_dim"] = 12, ["max_position_embeddings"] = 96,
            ["rms_norm_eps"] = 1e-6, ["query_pre_attn_scalar"] = 20, ["sliding_window"] = 4, ["attention_bias"] = true,
            ["final_logit_softcapping"] = 3.0, ["tie_word_embeddings"] = name != "gemma3",
            ["bos_token_id"] = 1, ["eos_token_id"] = 2, ["pad_token_id"] = 0,
        };
        if (name == "gemma2")
        {
            json["model_type"] = GemmaFamily.Gemma2;
            json["attn_logit_softcapping"] = 2.0;
            json["layer_types"] = new JsonArray("sliding_attention", "full_attention", "full_attention", "sliding_attention");
            json["rope_theta"] = 500.0;
        }
        else
        {
            json["model_type"] = GemmaFamily.Gemma3Text;
            json["sliding_window_pattern"] = 2; // S G S G
            json["rope_local_base_freq"] = 70.0;
            json["rope_theta"] = 10000.0;
            json["rope_scaling"] = new JsonObject { ["rope_type"] = "linear", ["factor"] = 2.0 };
            if (name == "gemma3-head16") // 16-wide heads take the attention's slot-block path (with the Gemma scale)
            {
                json["head_dim"] = 16;
                json["num_attention_heads"] = 8;
            }
        }
        return ModelConfig.FromHuggingFaceJson(JsonNode.Parse(json.ToJsonString())!.AsObject(), "config.json");
    }

    static void AssertClose(Tensor reference, Tensor fast, string what)
    {
        float scale = reference.abs().max().item<float>();
        float diff = (reference - fast).abs().max().item<float>();
        Assert.True(diff <= 1e-5f * Math.Max(scale, 1e-3f), $"{what}: max |torch − kernel| = {diff} (scale {scale})");
    }

    [Theory, MemberData(nameof(Cases))]
    public void Kernel_decoding_matches_the_torch_forward(string name, int threads)
    {
        using var model = TinyModels.RandomLM(Config(name), seed: 41);
        var (reference, fast, kernelForwards) = LlamaDecodeKernelTests.DecodeBothWays(model, threads);
        Assert.True(kernelForwards >= 7, "the decode kernel did not run every forward");
        Assert.Equal(reference.Count, fast.Count);
        for (int i = 0; i < reference.Count; i++) AssertClose(reference[i], fast[i], $"{name}, stage {i}");
    }

    /// <summary>
    /// The …ForSequenceClassification reward model scores through the same sessions (PARGS' candidate scoring): a
    /// ragged prefill, steps past the window and sibling candidates give the same final hidden states on the kernel as
    /// through torch (within 1e-5 of their scale), and the same scores within 1e-5 of Σ|w·h| — the scale of the head's
    /// dot product, whose terms cancel to a score several times smaller.
    /// </summary>
    [Theory]
    [InlineData("gemma2")]
    [InlineData("gemma3")]
    public void Reward_model_scores_on_the_kernel_match_torch(string name)
    {
        using var rm = TinyModels.RandomRM(Config(name), seed: 45, headScale: 5f);
        List<Tensor> Hidden(bool kernel)
        {
            using var _ = no_grad();
            using var off = kernel ? null : CpuKernels.Suppress();
            int vocab = rm.Config.VocabSize;
            using var session = new BatchSession(rm.Backbone, 2, initialCapacity: 4);
            var hidden = new List<Tensor> { session.Prefill([TinyModels.Tokens(6, vocab, 7), TinyModels.Tokens(2, vocab, 8)]).clone() };
            for (int step = 0; step < 8; step++) hidden.Add(session.Step(tensor(new long[] { 3 + step, 20 + step })).clone());
            hidden.Add(session.Siblings(tensor(new long[] { 4, 5, 6, 7, 8, 9 }, 2, 3)).clone());
            return hidden;
        }
        var reference = Hidden(kernel: false);
        long before = CpuKernels.ForwardsOnThisThread;
        var fast = Hidden(kernel: true);
        Assert.True(CpuKernels.ForwardsOnThisThread - before >= 10, "the decode kernel did not run the reward model's forwards");
        using var noGrad = no_grad();
        var weight = rm.ScoreWeight.detach().view(-1);
        for (int i = 0; i < reference.Count; i++)
        {
            AssertClose(reference[i], fast[i], $"{name} reward model, hidden states of stage {i}");
            float conditioning = (reference[i] * weight).abs().sum(-1).max().item<float>();
            float diff;
            using (CpuKernels.Suppress()) diff = (rm.ScoreFromHidden(reference[i]) - rm.ScoreFromHidden(fast[i])).abs().max().item<float>();
            Assert.True(diff <= 1e-5f * conditioning, $"{name} reward model, stage {i}: scores differ by {diff} (Σ|w·h| {conditioning})");
        }
    }

    /// <summary>Two rows (3 and 9 prompt tokens) decoded greedily for 32 tokens, far past the 4-token window.</summary>
    static (List<long[]> Tokens, List<Tensor> Logits) Greedy(CausalLM lm, bool kernel)
    {
        using var _ = no_grad();
        using var off = kernel ? null : CpuKernels.Suppress();
        int vocab = lm.Config.VocabSize;
        using var session = new BatchSession(lm.Backbone, 2, initialCapacity: 8);
        var logits = lm.LogitsFromHidden(session.Prefill([TinyModels.Tokens(3, vocab, 5), TinyModels.Tokens(9, vocab, 6)]));
        var tokens = new List<long[]>();
        var all = new List<Tensor>();
        for (int step = 0; step < 32; step++)
        {
            all.Add(logits.clone());
            var next = logits.argmax(-1);
            tokens.Add(next.data<long>().ToArray());
            logits = lm.LogitsFromHidden(session.Step(next));
        }
        return (tokens, all);
    }

    [Theory]
    [InlineData("gemma2")]
    [InlineData("gemma3")]
    public void Greedy_decoding_of_rows_of_different_lengths_is_identical_past_the_window(string name)
    {
        using var lm = TinyModels.RandomLM(Config(name), seed: 43);
        var (torchTokens, torchLogits) = Greedy(lm, kernel: false);
        long before = CpuKernels.ForwardsOnThisThread;
        var (kernelTokens, kernelLogits) = Greedy(lm, kernel: true);
        Assert.True(CpuKernels.ForwardsOnThisThread - before >= 32, "the decode kernel did not run the steps");
        for (int step = 0; step < 32; step++)
        {
            Assert.Equal(torchTokens[step], kernelTokens[step]);
            AssertClose(torchLogits[step], kernelLogits[step], $"{name}, step {step}");
        }
        Assert.True(torchTokens.Select(t => t[0]).Distinct().Count() > 3, "greedy decoding is degenerate: the test would not see a difference");
    }

    public static TheoryData<string> GoldenNames => GemmaLlamaCppGoldenTests.Names;

    /// <summary>
    /// The llama.cpp golden's next-token log-probabilities from one prefill of the whole text on the kernel, and its
    /// greedy continuation from kernel steps, within the tolerance <see cref="GemmaLlamaCppGoldenTests"/> allows the torch path.
    /// </summary>
    [Theory, MemberData(nameof(GoldenNames))]
    public void Llama_cpp_goldens_hold_on_the_kernel(string name)
    {
        var golden = GemmaLlamaCppGoldenTests.Golden(name);
        long[] tokens = golden["tokens"]!.AsArray().Select(n => (long)n!.GetValue<int>()).ToArray();
        long[] greedy = golden["greedy"]!.AsArray().Select(n => (long)n!.GetValue<int>()).ToArray();
        var logprobs = golden["logprobs"]!.AsArray();
        using var dir = new TempDir();
        ReferenceCheckpoints.Write(name, dir.File(name));
        using var contents = CheckpointLoader.Load(dir.File(name));
        using var lm = CausalLM.FromCheckpoint(contents);
        using var _ = no_grad();
        using var session = new BatchSession(lm.Backbone, 1, initialCapacity: tokens.Length + greedy.Length);
        long before = CpuKernels.ForwardsOnThisThread;
        var ours = lm.LogitsFromHidden(session.Append(tensor(tokens).view(1, -1))).to(ScalarType.Float64).log_softmax(-1)[0];
        Assert.Equal(before + 1, CpuKernels.ForwardsOnThisThread);
        double worst = 0;
        for (int position = 0; position < tokens.Length; position++)
        {
            var row = logprobs[position]!.AsArray();
            var mine = ours[position].data<double>().ToArray();
            for (int token = 0; token < row.Count; token++)
                if (row[token] is { } value) worst = Math.Max(worst, Math.Abs(mine[token] - value.GetValue<double>()));
                else Assert.True(mine[token] < -80, $"position {position}, token {token}: llama.cpp's probability underflowed, ours is {mine[token]}");
        }
        double tolerance = GemmaLlamaCppGoldenTests.LlamaCppTolerances(name).Exact;
        Assert.True(worst <= tolerance, $"{name}: the kernel's log-probabilities differ from llama.cpp's by up to {worst:G3} (tolerance {tolerance})");

        var next = ours[tokens.Length - 1].argmax().view(1);
        var continuation = new List<long>();
        for (int step = 0; step < greedy.Length; step++)
        {
            continuation.Add(next.item<long>());
            next = lm.LogitsFromHidden(session.Step(next)).argmax(-1);
        }
        Assert.Equal(greedy, continuation);
        Assert.True(CpuKernels.ForwardsOnThisThread - before >= 1 + greedy.Length, "the decode kernel did not run the greedy steps");
    }

    /// <summary>The soft-capped, rescaled attention of <see cref="CpuOps.Attend"/> against a double-precision reference.</summary>
    [Theory]
    [InlineData(1, 24, 9, 5f)]    // a decoding step, Gemma-2's soft-cap
    [InlineData(2, 8, 83, 50f)]   // Gemma-2's real cap over many slots (vector loop and a tail)
    [InlineData(6, 16, 21, 2f)]   // several queries at D = 16 (which without a cap take the slot-block path)
    [InlineData(6, 16, 21, 0f)]   // the slot-block path with a scale that is not D^−½
    [InlineData(3, 12, 37, 0.5f)] // a cap far below the scores
    public void Attend_with_a_scale_and_a_soft_cap_matches_a_reference(int queries, int headDim, int slots, float softCap)
    {
        const float scale = 0.37f;
        var random = new Random(queries * 1000 + headDim + slots);
        float[] Random(int n) => Enumerable.Range(0, n).Select(_ => (float)(random.NextDouble() * 4 - 2)).ToArray();
        float[] q = Random(queries * headDim), keys = Random(slots * headDim), values = Random(slots * headDim);
        var mask = new float[queries * slots];
        for (int i = 0; i < queries; i++)
            for (int s = 0; s < slots; s++)
                mask[i * slots + s] = s > 0 && (s + i) % 4 == 0 ? float.NegativeInfinity : 0f;
        var output = new float[queries * headDim];
        var scratch = new float[CpuOps.AttendScratchFloats(queries, slots, headDim, softCapped: softCap > 0)];
        fixed (float* qp = q, kp = keys, vp = values, mp = mask, op = output, sp = scratch)
        {
            var masks = stackalloc float*[queries];
            var outputs = stackalloc float*[queries];
            for (int i = 0; i < queries; i++) { masks[i] = mp + i * slots; outputs[i] = op + i * headDim; }
            CpuOps.Attend(qp, queries, kp, vp, masks, slots, headDim, sp, outputs, scale, softCap);
        }
        for (int i = 0; i < queries; i++)
        {
            var weights = new double[slots];
            for (int s = 0; s < slots; s++)
            {
                if (float.IsNegativeInfinity(mask[i * slots + s])) { weights[s] = double.NegativeInfinity; continue; }
                double dot = 0;
                for (int d = 0; d < headDim; d++) dot += (double)q[i * headDim + d] * keys[s * headDim + d];
                double score = dot * scale;
                weights[s] = softCap > 0 ? Math.Tanh(score / softCap) * softCap : score;
            }
            double max = weights.Max(), total = weights.Sum(w => Math.Exp(w - max));
            for (int d = 0; d < headDim; d++)
            {
                double want = 0;
                for (int s = 0; s < slots; s++) want += Math.Exp(weights[s] - max) / total * values[s * headDim + d];
                Assert.True(Math.Abs(output[i * headDim + d] - want) < 2e-6, $"query {i}, dim {d}: {output[i * headDim + d]} vs {want}");
            }
        }
    }

    [Fact]
    public void Vector_tanh_is_within_a_few_ulps_of_Math_Tanh()
    {
        var random = new Random(11);
        double worst = 0;
        for (int i = 0; i < 50_000; i++)
        {
            // Mostly around the Padé/exponential seam at |x| = 1, also tiny and huge arguments.
            float x = (float)((random.NextDouble() * 2 - 1) * (i % 4 == 0 ? 1e-3 : i % 4 == 1 ? 1.5 : i % 4 == 2 ? 6 : 60));
            double want = Math.Tanh(x);
            float got = CpuOps.Tanh(Vector256.Create(x)).GetElement(0);
            worst = Math.Max(worst, Math.Abs(got - want) / Math.Max(Math.Abs(want), 1e-30));
        }
        Assert.True(worst < 3e-7, $"worst relative error {worst:E2}");
        Assert.Equal(0f, CpuOps.Tanh(Vector256.Create(0f)).GetElement(0));
        Assert.Equal(1f, CpuOps.Tanh(Vector256.Create(200f)).GetElement(0));
        Assert.Equal(-1f, CpuOps.Tanh(Vector256.Create(-200f)).GetElement(0));
    }

    [Fact]
    public void Rms_norm_plus_one_and_geglu_match_their_definitions()
    {
        var random = new Random(7);
        float[] x = Enumerable.Range(0, 37).Select(_ => (float)(random.NextDouble() * 6 - 3)).ToArray();
        float[] w = Enumerable.Range(0, 37).Select(_ => (float)(random.NextDouble() - 0.5)).ToArray();
        float[] y = new float[37], gate = (float[])x.Clone(), up = (float[])w.Clone();
        fixed (float* xp = x, wp = w, yp = y, gp = gate, upP = up)
        {
            CpuOps.RmsNormPlusOne(xp, wp, 1e-6, yp, 37);
            CpuOps.GeluTanhMul(gp, upP, 37);
        }
        double rms = Math.Sqrt(x.Sum(v => (double)v * v) / 37 + 1e-6);
        for (int i = 0; i < 37; i++)
        {
            Assert.True(Math.Abs(y[i] - x[i] / rms * (1 + w[i])) < 1e-6 * Math.Max(1, Math.Abs(y[i])), $"RMSNorm (1 + w), element {i}");
            double gelu = 0.5 * x[i] * (1 + Math.Tanh(Math.Sqrt(2 / Math.PI) * (x[i] + 0.044715 * Math.Pow(x[i], 3))));
            Assert.True(Math.Abs(gate[i] - gelu * w[i]) < 1e-6, $"GeGLU, element {i}");
        }
    }
}
