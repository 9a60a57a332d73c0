using Pargs.Models;
using Pargs.Rewards;
using Pargs.Tokenizers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Pargs.Benchmarks;

/// <summary>
/// BENCHMARK ONLY: a reward model with random weights — a backbone of any shape plus a linear
/// <c>score</c> head, exactly the work a real reward model does per token, with meaningless rewards.
/// Lets the decoding benchmarks run an RM "the same shape as the LM" without a trained checkpoint.
/// </summary>
public sealed class RandomRewardModel : nn.Module, IRewardModel
{
    readonly Linear score;

    public RandomRewardModel(ModelConfig config, long seed, ITokenizer? tokenizer = null) : base(nameof(RandomRewardModel))
    {
        manual_seed(seed);
        Backbone = TransformerBackbone.Create(config);
        score = nn.Linear(config.HiddenSize, 1, hasBias: false);
        register_module(Backbone.HuggingFacePrefix, Backbone);
        register_module("score", score);
        Tokenizer = tokenizer;
        eval();
    }

    public TransformerBackbone Backbone { get; }
    public ITokenizer? Tokenizer { get; }

    public Tensor ScoreFromHidden(Tensor hidden) => score.forward(hidden).squeeze(-1);

    public Tensor SequenceRewards(Tensor ids, Tensor valid)
    {
        var hidden = Backbone.Forward(ids, AttentionMasks.Positions(null, valid), AttentionMasks.Causal(null, valid), null);
        var last = valid.to(ScalarType.Int64).sum(1) - 1;
        var picked = hidden.gather(1, last.view(-1, 1, 1).expand(-1, 1, hidden.shape[2])).squeeze(1);
        return ScoreFromHidden(picked);
    }
}
