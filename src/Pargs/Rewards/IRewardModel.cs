using Pargs.Models;
using Pargs.Tokenizers;
using static TorchSharp.torch;

namespace Pargs.Rewards;

/// <summary>
/// What guided decoding needs from a reward model: its backbone (so candidates can be scored over a KV
/// cache), the scalar head, whole-sequence rewards (Best-of-N and the naive oracle) and its tokenizer.
/// </summary>
public interface IRewardModel
{
    TransformerBackbone Backbone { get; }
    ITokenizer? Tokenizer { get; }

    /// <summary>Rewards from hidden states [..., hidden] → [...].</summary>
    Tensor ScoreFromHidden(Tensor hidden);

    /// <summary>Reward of each padded sequence [B, T] at its last real token → [B].</summary>
    Tensor SequenceRewards(Tensor ids, Tensor valid);
}
