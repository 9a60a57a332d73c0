using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Pargs.Models.Families.Llama;

/// <summary>
/// Gated feed-forward: down(act(gate(x)) · up(x)) — SwiGLU with SiLU (Llama, Mistral, Qwen), GeGLU with the tanh GELU
/// (Gemma passes <see cref="Gpt2.Gpt2Mlp.GeluNew"/>, which is torch's gelu(approximate="tanh")).
/// </summary>
public sealed class LlamaMlp : nn.Module<Tensor, Tensor>
{
    readonly Linear gateProj, upProj, downProj;
    readonly Func<Tensor, Tensor> activation;

    public LlamaMlp(ModelConfig config, Func<Tensor, Tensor>? activation = null) : base(nameof(LlamaMlp))
    {
        this.activation = activation ?? (t => nn.functional.silu(t));
        gateProj = nn.Linear(config.HiddenSize, config.IntermediateSize, hasBias: false);
        upProj = nn.Linear(config.HiddenSize, config.IntermediateSize, hasBias: false);
        downProj = nn.Linear(config.IntermediateSize, config.HiddenSize, hasBias: false);
        register_module("gate_proj", gateProj);
        register_module("up_proj", upProj);
        register_module("down_proj", downProj);
    }

    public override Tensor forward(Tensor x)
        => downProj.forward(activation(gateProj.forward(x)) * upProj.forward(x));
}
