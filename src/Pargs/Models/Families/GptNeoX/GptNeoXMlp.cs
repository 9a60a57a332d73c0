using Pargs.Models.Families.Gpt2;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Pargs.Models.Families.GptNeoX;

/// <summary>dense_4h_to_h(act(dense_h_to_4h(x))), both with biases; act is hidden_act (exact GELU by default).</summary>
public sealed class GptNeoXMlp : nn.Module<Tensor, Tensor>
{
    readonly Linear denseHTo4h, dense4hToH;
    readonly bool exactGelu;

    public GptNeoXMlp(ModelConfig config) : base(nameof(GptNeoXMlp))
    {
        exactGelu = GptNeoXSettings.Of(config).HiddenAct == "gelu";
        denseHTo4h = nn.Linear(config.HiddenSize, config.IntermediateSize, hasBias: true);
        dense4hToH = nn.Linear(config.IntermediateSize, config.HiddenSize, hasBias: true);
        register_module("dense_h_to_4h", denseHTo4h);
        register_module("dense_4h_to_h", dense4hToH);
    }

    public override Tensor forward(Tensor x)
    {
        var up = denseHTo4h.forward(x);
        // "gelu" is torch's exact GELU, x·Φ(x); gelu_new / gelu_pytorch_tanh / gelu_fast are its tanh approximation.
        return dense4hToH.forward(exactGelu ? nn.functional.gelu(up) : Gpt2Mlp.GeluNew(up));
    }
}
