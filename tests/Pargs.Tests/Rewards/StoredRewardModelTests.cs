using TorchSharp;
using Pargs.Checkpoints;
using Pargs.Decoding;
using Pargs.Decoding.Methods;
using Pargs.Models;
using Pargs.Models.Cpu;
using Pargs.Rewards;
using Pargs.Tests.Cli;
using static TorchSharp.torch;

namespace Pargs.Tests.Rewards;

/// <summary>
/// Reward models loaded for decoding in their stored precision (<see cref="RewardModel.LoadForInference"/>): the
/// backbone mapped as stored (bf16 safetensors, GGUF), the score head float32; held to the float32 load of the same
/// file (its weights dequantized), and decoding PARGS to the same tokens as the float32 run.
/// </summary>
public class StoredRewardModelTests : IDisposable
{
    readonly TempDir dir = new();
    public void Dispose() => dir.Dispose();

    /// <summary>A reward model on stories260K's backbone with a seeded head, saved as a folder in <paramref name="type"/>.</summary>
    string SaveRewardModel(string name, StoredType type, RewardObjective? objective = RewardObjective.Full, string? baseModel = null)
    {
        using var contents = CheckpointLoader.Load(baseModel ?? TestPaths.Stories260KGguf);
        using var rm = RewardModel.FromCausalLM(contents, seed: 5);
        rm.Tokenizer = Pargs.Tokenizers.TokenizerLoader.ForCheckpoint(contents, null); // saved beside it: convert writes it into the GGUF
        using (no_grad())
        {
            using var twenty = 20f.ToScalar(); // held: see Pargs.Models.HeldScalars
            rm.ScoreWeight.mul_(twenty); // rewards that move PARGS's choices
        }
        string path = dir.File(name);
        rm.Save(path, objective, type);
        return path;
    }

    static Tensor Batch(out Tensor valid)
    {
        valid = tensor(new[] { true, true, true, true, true, true, true, true, true, true, false, false, false, false }, 2, 7);
        return tensor(new long[] { 1, 403, 13, 70, 7, 31, 200, 1, 57, 303, 2, 2, 2, 2 }, 2, 7);
    }

    static float WorstRelative(Tensor actual, Tensor expected)
        => (actual - expected).abs().max().item<float>() / expected.abs().max().item<float>();

    [Theory]
    [InlineData("bf16-folder")]
    [InlineData("f16-gguf")]
    public void Stored_rewards_equal_the_float32_load_of_the_same_file(string kind)
    {
        string path = SaveRewardModel("rm-bf16", StoredType.BF16);
        if (kind == "f16-gguf")
        {
            string gguf = dir.File("rm-f16.gguf");
            GgufConverter.Convert(path, gguf, GgufOutputType.F16); // bf16 values are exact in f16 at these magnitudes
            path = gguf;
        }
        using var stored = RewardModel.LoadForInference(path);
        using var float32 = RewardModel.Load(path);
        Assert.NotNull(stored.StoredWeights);
        Assert.Equal(["score.weight"], stored.named_parameters().Select(p => p.name)); // only the head is float32
        Assert.Null(float32.StoredWeights);
        Assert.Equal(float32.Readout, stored.Readout);
        Assert.Equal(RewardObjective.Full, stored.Objective);
        Assert.Equal(float32.ScoreWeight.data<float>().ToArray(), stored.ScoreWeight.data<float>().ToArray());

        using var _ = no_grad();
        var ids = Batch(out var valid);
        var expected = float32.PrefixRewards(ids, valid);
        long before = CpuKernels.ForwardsOnThisThread;
        var actual = stored.PrefixRewards(ids, valid);
        Assert.True(CpuKernels.ForwardsOnThisThread > before, "the stored-precision kernel did not run");
        // Padding positions (row 1's tail) are meaningless; compare real ones.
        float worst = Math.Max(WorstRelative(actual[0], expected[0]), WorstRelative(actual[1].narrow(0, 0, 3), expected[1].narrow(0, 0, 3)));
        Assert.True(worst <= 1e-4f, $"{kind}: max relative |stored − float32| prefix reward = {worst}");
    }

    [Fact]
    public void Pargs_candidates_scored_on_the_stored_reward_model_choose_the_float32_tokens()
    {
        string path = SaveRewardModel("rm-bf16", StoredType.BF16);
        using var lm = CausalLM.Load(TestPaths.Stories260KGguf);
        using var stored = RewardModel.LoadForInference(path);
        using var float32 = RewardModel.Load(path);
        var options = new DecodingOptions { Method = new PargsOptions { K = 6, W = 1.0 }, MaxNewTokens = 20, Seed = 4, StopAtEos = false, BatchSize = 2 };
        string[] prompts = ["Once upon a time", "The dog"];
        var expected = TextGenerator.Generate(lm, float32, prompts, options);
        var actual = TextGenerator.Generate(lm, stored, prompts, options);
        for (int i = 0; i < prompts.Length; i++) Assert.Equal(expected[i].TokenIds, actual[i].TokenIds);
    }

    [Fact]
    public void A_q8_0_gguf_reward_model_loads_mapped_and_scores_close_to_its_dequantized_weights()
    {
        // The seeded reference llama (widths of whole 32-value blocks; stories260K's 172-wide MLP has none).
        string lm = dir.File("llama");
        ReferenceCheckpoints.Write("llama", lm);
        string folder = SaveRewardModel("rm-f32", StoredType.F32, objective: null, baseModel: lm);
        string gguf = dir.File("rm-q8_0.gguf");
        GgufConverter.Convert(folder, gguf, GgufOutputType.Q8_0);
        var file = GgufFile.Read(gguf);
        Assert.Equal(GgmlType.F32, file.Tensors.Single(t => t.Name == StoredCheckpoint.GgufScoreTensor).Type);
        Assert.Equal(GgmlType.Q8_0, file.Tensors.Single(t => t.Name == "blk.0.attn_q.weight").Type);
        using var stored = RewardModel.LoadForInference(gguf);
        using var float32 = RewardModel.Load(gguf);
        Assert.Null(stored.Objective);
        Assert.Equal(WeightFormatOf(stored, "model.layers.0.self_attn.q_proj.weight"), Pargs.Weights.WeightFormat.Q8_0);
        using var _ = no_grad();
        using var vocab = stored.Config.VocabSize.ToScalar(); // held: see Pargs.Models.HeldScalars
        var ids = Batch(out var valid).remainder(vocab);
        // Integer formats multiply against activations rounded to 8 bits (as llama.cpp does): within 3e-2 of the
        // float32 product on the dequantized weights (StoredPrecisionTests explains the bound); a wrong block is ~1.
        float worst = WorstRelative(stored.PrefixRewards(ids, valid)[0], float32.PrefixRewards(ids, valid)[0]);
        Assert.True(worst <= 3e-2f, $"q8_0: max relative |stored − float32| prefix reward = {worst}");
    }

    static Pargs.Weights.WeightFormat? WeightFormatOf(RewardModel rm, string name) => rm.StoredWeights!.FormatOf(name);

    [Fact]
    public void A_language_model_folder_is_refused_as_a_reward_model_and_a_reward_model_as_a_language_model()
    {
        string rm = SaveRewardModel("rm", StoredType.BF16);
        var e = Assert.Throws<PargsException>(() => CausalLM.LoadForInference(rm));
        Assert.Contains("reward model", e.Message);
        string lmFolder = dir.File("lm");
        using (var lm = CausalLM.Load(TestPaths.Stories260KGguf))
            HuggingFaceFolder.Save(lmFolder, lm.Config, lm.Architecture, lm.StateDictForSaving(), lm.Tokenizer, weightsType: StoredType.BF16);
        e = Assert.Throws<PargsException>(() => RewardModel.LoadForInference(lmFolder));
        Assert.Contains("score.weight", e.Message);
    }

    [Fact]
    public void Generate_pargs_with_a_bf16_or_gguf_reward_model_gives_the_tokens_of_the_float32_run_on_an_f32_file()
    {
        string bf16 = SaveRewardModel("rm-bf16", StoredType.BF16);
        // The F32 file of the same values: the bf16 folder loaded as float32 and saved again.
        string f32 = dir.File("rm-f32");
        using (var rm = RewardModel.Load(bf16)) rm.Save(f32, RewardObjective.Full);
        string gguf = dir.File("rm-f16.gguf");
        PargsCli.Succeeds("convert", bf16, "--to", "gguf", "--type", "f16", "--out", gguf);
        string[] Args(string rm, params string[] extra) =>
        [
            "generate", "--model", PargsCli.Stories260KGguf, "--reward-model", rm, "--method", "pargs", "-k", "6",
            "--prompt", "Once upon a time", "--max-new-tokens", "24", "--seed", "2", .. extra,
        ];
        var reference = PargsCli.Succeeds(Args(f32, "-w", "1", "--naive")); // torch, float32 modules, no caches
        Assert.Equal(reference.Stdout, PargsCli.Succeeds(Args(bf16, "-w", "1")).Stdout);
        Assert.Equal(reference.Stdout, PargsCli.Succeeds(Args(gguf, "-w", "1")).Stdout);
        // The reward model steers these tokens: without it (w = 0) they differ, so equality above is the RM's doing too.
        Assert.NotEqual(reference.Stdout, PargsCli.Succeeds(Args(bf16, "-w", "0")).Stdout);
    }
}
