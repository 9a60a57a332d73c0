using Pargs.Server;
using Pargs.Tests.Models;
using static TorchSharp.torch;

namespace Pargs.Tests.Server;

/// <summary>
/// /v1/rewards' score head on the host (<see cref="BatchingGenerationBackend.Scores"/>): each reward is the dot product of
/// a candidate's hidden state with the head's weight, summed in double and rounded once — checked against libtorch's
/// float64 product of the same tensors (an independent sum: equal to the last float bit), and against the model's own
/// float32 head (<see cref="Pargs.Rewards.RewardModel.ScoreFromHidden"/>, what the local scorer reads) up to float rounding.
/// </summary>
public class RewardScoreHeadTests
{
    [Fact]
    public void Host_head_is_the_double_precision_dot_product_of_each_candidate()
    {
        using var rm = TinyModels.RandomRM(TinyModels.LlamaConfig(), seed: 11, headScale: 3f);
        using var _ = no_grad();
        // A pass's shape: rows × k candidates × hidden, past the 32 rows CpuLinear takes (the libtorch path before).
        using var hidden = randn([7, 10, rm.Config.HiddenSize], generator: new TorchSharp.torch.Generator(5));
        var scores = BatchingGenerationBackend.Scores(rm, hidden);

        using var exact = matmul(hidden.to(ScalarType.Float64), rm.ScoreWeight.to(ScalarType.Float64).t()).reshape(-1).to(ScalarType.Float32);
        Assert.Equal(exact.data<float>().ToArray(), scores);
        using var model = rm.ScoreFromHidden(hidden).reshape(-1);
        var torchScores = model.data<float>().ToArray();
        for (int i = 0; i < scores.Length; i++)
            Assert.True(Math.Abs(scores[i] - torchScores[i]) <= 1e-5f * (1 + Math.Abs(torchScores[i])), $"candidate {i}: {scores[i]} vs the model's head {torchScores[i]}");
    }

    [Fact]
    public void A_non_contiguous_hidden_state_is_read_in_its_logical_order()
    {
        using var rm = TinyModels.RandomRM(TinyModels.LlamaConfig(), seed: 12);
        using var _ = no_grad();
        using var wide = randn([rm.Config.HiddenSize, 6, 4], generator: new TorchSharp.torch.Generator(6));
        using var hidden = wide.permute(1, 2, 0); // [6, 4, hidden], strided
        Assert.False(hidden.is_contiguous());
        using var exact = matmul(hidden.to(ScalarType.Float64), rm.ScoreWeight.to(ScalarType.Float64).t()).reshape(-1).to(ScalarType.Float32);
        Assert.Equal(exact.data<float>().ToArray(), BatchingGenerationBackend.Scores(rm, hidden));
    }
}
