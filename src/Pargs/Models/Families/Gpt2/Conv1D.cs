using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Pargs.Models.Families.Gpt2;

/// <summary>
/// GPT-2's "Conv1D": a linear layer whose weight is stored transposed, [in, out], as in the original
/// TensorFlow checkpoint. Kept in that layout so Hugging Face state dicts load one to one.
/// </summary>
public sealed class Conv1D : nn.Module<Tensor, Tensor>
{
    public Parameter weight, bias;

    public Conv1D(int inFeatures, int outFeatures) : base(nameof(Conv1D))
    {
        weight = nn.Parameter(empty(inFeatures, outFeatures));
        bias = nn.Parameter(zeros(outFeatures));
        nn.init.normal_(weight, 0, 0.02);
        register_parameter("weight", weight);
        register_parameter("bias", bias);
    }

    public override Tensor forward(Tensor x) => x.matmul(weight).Plus(bias);
}
