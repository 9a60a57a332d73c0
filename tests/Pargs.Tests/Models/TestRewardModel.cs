using Pargs.Models;
using Pargs.Rewards;
using Pargs.Tokenizers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Pargs.Tests.Models;

/// <summary>A random backbone + linear score head, for decoding tests that need some reward model.</summary>
public sealed class TestRewardModel : nn.Module, IRewardModel
{
    readonly Linear score;

    public TestRewardModel(ModelConfig config, long seed, float headScale = 1f) : base(nameof(TestRewardModel))
    {
        manual_seed(seed);
        Backbone = TransformerBackbone.Create(config);
        score = nn.Linear(config.HiddenSize, 1, hasBias: false);
        register_module(Backbone.HuggingFacePrefix, Backbone);
        register_module("score", score);
        TinyModels.Randomize(this, seed);
        using (no_grad()) score.weight!.mul_(headScale);
        Tokenizer = new TestCharTokenizer(config.VocabSize);
        eval();
    }

    public TransformerBackbone Backbone { get; }
    public ITokenizer? Tokenizer { get; set; }
    public Linear Head => score;
    public Tensor ScoreFromHidden(Tensor hidden) => score.forward(hidden).squeeze(-1);

    public Tensor SequenceRewards(Tensor ids, Tensor valid)
    {
        var hidden = Backbone.Forward(ids, AttentionMasks.Positions(null, valid), AttentionMasks.Causal(null, valid), null);
        var last = valid.to(ScalarType.Int64).sum(1) - 1;
        var picked = hidden.gather(1, last.view(-1, 1, 1).expand(-1, 1, hidden.shape[2])).squeeze(1);
        return ScoreFromHidden(picked);
    }
}
