using System.Text.Json.Nodes;
using Pargs.Decoding;
using Pargs.Decoding.Methods;
using Pargs.Models;
using Pargs.Rewards;
using Pargs.Rewards.Gold;
using Pargs.Tests.Decoding;

namespace Pargs.Tests.Models.Encoders;

/// <summary>
/// Encoder reward models as decoding and evaluation use them: which number is the reward (--reward-label), what is
/// refused (pickles, configs Pargs cannot honour), and guided decoding whose batched scorer agrees with the oracle.
/// </summary>
public class EncoderRewardModelTests : IDisposable
{
    readonly TempDir _dir = new();
    public void Dispose() => _dir.Dispose();

    static double[] LogSoftmax(double[] logits)
    {
        double max = logits.Max();
        double lse = max + Math.Log(logits.Sum(l => Math.Exp(l - max)));
        return logits.Select(l => l - lse).ToArray();
    }

    [Theory]
    [InlineData("bert", "POSITIVE", 1)]
    [InlineData("bert", "NEGATIVE", 0)]
    [InlineData("bert", "1", 1)]
    [InlineData("roberta", "neutral", 1)]
    [InlineData("roberta", "positive", 2)]
    public void A_multi_label_head_gives_the_log_probability_of_the_chosen_label(string family, string label, int index)
    {
        string dir = TinyEncoders.Write(_dir.File(family), EncoderReferenceTests.ConfigOf(family), seed: 11);
        using var rm = EncoderRewardModel.Load(dir, rewardLabel: label);
        var reference = TinyEncoders.Reference(dir);
        foreach (var (prompt, response) in EncoderReferenceTests.Texts.Take(3))
        {
            var encoding = rm.Encode(prompt, response);
            double expected = LogSoftmax(reference.Logits(encoding.Ids, encoding.TypeIds))[index];
            Assert.Equal(expected, rm.Score([(prompt, response)])[0], 4);
        }
        Assert.Equal(index, rm.Label.Index);
    }

    [Fact]
    public void A_one_label_head_gives_its_logit_and_needs_no_label()
    {
        string dir = TinyEncoders.Write(_dir.File("distilbert"), TinyEncoders.DistilBert(), seed: 5);
        using var rm = EncoderRewardModel.Load(dir);
        var reference = TinyEncoders.Reference(dir);
        var encoding = rm.Encode("Once upon a time", " a cat sat.");
        Assert.Equal(reference.Logits(encoding.Ids, encoding.TypeIds)[0], rm.Score([("Once upon a time", " a cat sat.")])[0], 4);
        // SequenceRewards reads a complete single-text encoding (what the server's /v1/rewards sends).
        var ids = TorchSharp.torch.tensor(encoding.Ids.Select(i => (long)i).ToArray()).unsqueeze(0);
        Assert.Equal(reference.Logits(encoding.Ids, encoding.TypeIds)[0], rm.SequenceRewards(ids, TorchSharp.torch.ones_like(ids, dtype: TorchSharp.torch.ScalarType.Bool))[0].item<float>(), 4);
    }

    [Fact]
    public void Labels_are_checked_against_id2label_and_a_multi_label_head_needs_one()
    {
        string dir = TinyEncoders.Write(_dir.File("roberta"), TinyEncoders.Roberta(), seed: 2);
        var none = Assert.Throws<PargsException>(() => EncoderRewardModel.Load(dir));
        Assert.Contains("3 labels (0: negative, 1: neutral, 2: positive)", none.Message);
        Assert.Contains("--reward-label", none.Message);
        var unknown = Assert.Throws<PargsException>(() => EncoderRewardModel.Load(dir, rewardLabel: "POSITIVE"));
        Assert.Contains("\"POSITIVE\" is not one of the classifier's labels", unknown.Message);

        // The label saved with the model is used, and --reward-label overrides it.
        var config = TinyEncoders.Roberta();
        config[RewardLabel.ConfigField] = "positive";
        string saved = TinyEncoders.Write(_dir.File("roberta-saved"), config, seed: 2);
        using (var rm = EncoderRewardModel.Load(saved)) Assert.Equal(2, rm.Label.Index);
        using (var rm = EncoderRewardModel.Load(saved, "negative")) Assert.Equal(0, rm.Label.Index);
    }

    [Fact]
    public void The_input_setting_and_label_saved_with_the_model_are_read_back()
    {
        string dir = TinyEncoders.Write(_dir.File("bert"), TinyEncoders.Bert(), seed: 2);
        using (var plain = EncoderRewardModel.Load(dir, "POSITIVE")) Assert.Equal(EncoderInput.Text, plain.Input);
        EncoderRewardModel.SaveSettings(dir, EncoderInput.Pair, "NEGATIVE");
        using var saved = EncoderRewardModel.Load(dir);
        Assert.Equal(EncoderInput.Pair, saved.Input);
        Assert.Equal("NEGATIVE", saved.Label.Name);
        Assert.Equal([0, 0, 0, 0, 1, 1], saved.Encode("a b", "c").TypeIds); // [CLS] a b [SEP] c [SEP]
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "config.json")))!.AsObject();
        config[EncoderInputs.ConfigField] = "both";
        File.WriteAllText(Path.Combine(dir, "config.json"), config.ToJsonString());
        Assert.Contains("pargs_input", Assert.Throws<PargsException>(() => EncoderRewardModel.Load(dir)).Message);
    }

    [Fact]
    public void Pickled_weights_are_refused_naming_the_file_and_why()
    {
        string dir = _dir.File("pickled");
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "config.json"), TinyEncoders.Bert().ToJsonString());
        File.WriteAllBytes(Path.Combine(dir, "pytorch_model.bin"), [0x80, 0x02]);
        var e = Assert.Throws<PargsException>(() => EncoderRewardModel.Load(dir, "POSITIVE"));
        Assert.Contains("pytorch_model.bin", e.Message);
        Assert.Contains("arbitrary code", e.Message);
        Assert.Contains("safetensors", e.Message);
        var ckpt = _dir.File("model.ckpt");
        File.WriteAllBytes(ckpt, [0x80, 0x02]);
        Assert.Contains("model.ckpt: pickled PyTorch weights are not read", Assert.Throws<PargsException>(() => GoldRewards.FromFolder(ckpt)).Message);
    }

    [Theory]
    [InlineData("bert", "position_embedding_type", "\"relative_key\"", "position_embedding_type")]
    [InlineData("bert", "hidden_act", "\"swish\"", "hidden_act")]
    [InlineData("bert", "is_decoder", "true", "is_decoder")]
    [InlineData("bert", "architectures", "[\"BertForMaskedLM\"]", "BertForMaskedLM")]
    [InlineData("deberta-v2", "conv_kernel_size", "3", "conv_kernel_size")]
    [InlineData("deberta-v2", "pos_att_type", "[\"p2p\"]", "p2p")]
    [InlineData("deberta-v2", "norm_rel_ebd", "\"batch_norm\"", "norm_rel_ebd")]
    [InlineData("bert", "problem_type", "\"ranking\"", "problem_type")]
    public void Config_fields_that_would_change_the_result_are_honoured_or_refused(string family, string field, string value, string named)
    {
        string dir = TinyEncoders.Write(_dir.File(family), EncoderReferenceTests.ConfigOf(family), seed: 1);
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "config.json")))!.AsObject();
        config[field] = JsonNode.Parse(value);
        File.WriteAllText(Path.Combine(dir, "config.json"), config.ToJsonString());
        var e = Assert.Throws<PargsException>(() => EncoderRewardModel.Load(dir, "1"));
        Assert.Contains(named, e.Message);
        Assert.Contains("config.json", e.Message);
    }

    [Fact]
    public void A_missing_or_misshapen_tensor_is_refused()
    {
        string dir = TinyEncoders.Write(_dir.File("bert"), TinyEncoders.Bert(), seed: 1, t => t.Remove("bert.pooler.dense.weight"));
        Assert.Contains("bert.pooler.dense.weight", Assert.Throws<PargsException>(() => EncoderRewardModel.Load(dir, "POSITIVE")).Message);
        // transformers' older checkpoints carry the position_ids buffer: accepted.
        string withBuffer = TinyEncoders.Write(_dir.File("bert2"), TinyEncoders.Bert(), seed: 1,
            t => t["bert.embeddings.position_ids"] = HeldScalars.Arange(64, TorchSharp.torch.ScalarType.Int64).unsqueeze(0));
        using var rm = EncoderRewardModel.Load(withBuffer, "POSITIVE");
    }

    static CausalLM Stories() => CausalLM.Load(TestPaths.Stories260KGguf);

    [Theory]
    [InlineData("bert", "text", "POSITIVE")]
    [InlineData("deberta-v3", "pair", null)]
    [InlineData("roberta", "pair", "positive")]
    public void Guided_decoding_with_an_encoder_agrees_with_the_oracle(string family, string input, string? label)
    {
        var config = EncoderReferenceTests.ConfigOf(family);
        config[EncoderInputs.ConfigField] = input;
        config["max_position_embeddings"] = 66;
        using var rm = EncoderRewardModel.Load(TinyEncoders.Write(_dir.File(family), config, seed: 4), label);
        using var lm = Stories();
        string[] prompts = ["Once upon a time", "Tim was sad because"];
        foreach (IMethodOptions method in new IMethodOptions[] { new PargsOptions { K = 4, W = 2 }, new ArgsOptions { K = 3, W = 1.5 } })
        {
            var options = new DecodingOptions { Method = method, MaxNewTokens = 6, Seed = 3 };
            var outcome = OracleComparison.AssertFastMatchesNaive(lm, rm, options, prompts);
            Assert.All(outcome.FastRows, r => Assert.NotEmpty(r.Tokens));
        }
    }

    [Fact]
    public void Best_of_n_picks_the_sample_the_encoder_scores_highest()
    {
        var config = TinyEncoders.Bert();
        config[EncoderInputs.ConfigField] = "pair";
        using var rm = EncoderRewardModel.Load(TinyEncoders.Write(_dir.File("bert"), config, seed: 9), "POSITIVE");
        using var lm = Stories();
        var prompts = new[] { "Once upon a time" };
        var best = TextGenerator.Generate(lm, rm, prompts, new DecodingOptions { Method = new BestOfNOptions { N = 4, K = 10 }, MaxNewTokens = 6, Seed = 2 });
        Assert.Single(best);
        // The chosen output's reward is the encoder's reward of (prompt, output).
        Assert.Equal(rm.Score([(prompts[0], best[0].Output)])[0], best[0].GuideReward!.Value, 4);
    }

    [Fact]
    public void An_encoder_judges_as_the_gold_reward()
    {
        string dir = TinyEncoders.Write(_dir.File("bert"), TinyEncoders.Bert(), seed: 6);
        using var judge = (EncoderGoldReward)GoldRewards.FromFolder(dir, "POSITIVE");
        Assert.Equal("rm:bert:POSITIVE", judge.Name);
        using var rm = EncoderRewardModel.Load(dir, "POSITIVE");
        Assert.Equal(rm.Score([("Once upon a time", " it was sunny.")])[0], judge.Score("Once upon a time", " it was sunny."), 5);
        Assert.Contains("--reward-label applies to encoder classifiers",
            Assert.Throws<PargsException>(() => GoldRewards.FromFolder(TestPaths.ShippedPartialRm, "POSITIVE")).Message);
    }
}
