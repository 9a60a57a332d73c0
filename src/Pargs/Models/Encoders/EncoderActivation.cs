using static TorchSharp.torch;

namespace Pargs.Models.Encoders;

/// <summary>The activations encoder configs name (transformers' ACT2FN keys Pargs implements).</summary>
public enum EncoderActivation
{
    /// <summary>"gelu": the exact GELU, x·Φ(x) with the error function (BERT, RoBERTa, DistilBERT, DeBERTa).</summary>
    Gelu,
    /// <summary>"gelu_new" / "gelu_pytorch_tanh": GELU's tanh approximation.</summary>
    GeluTanh,
    Relu,
    Tanh,
}

public static class EncoderActivations
{
    /// <summary>The activation transformers' ACT2FN maps <paramref name="name"/> to, or null when Pargs has none.</summary>
    public static EncoderActivation? Parse(string name) => name switch
    {
        "gelu" => EncoderActivation.Gelu,
        "gelu_new" or "gelu_pytorch_tanh" => EncoderActivation.GeluTanh,
        "relu" => EncoderActivation.Relu,
        "tanh" => EncoderActivation.Tanh,
        _ => null,
    };

    public static Tensor Apply(this EncoderActivation activation, Tensor x) => activation switch
    {
        EncoderActivation.Gelu => nn.functional.gelu(x),
        EncoderActivation.GeluTanh => Families.Gpt2.Gpt2Mlp.GeluNew(x),
        EncoderActivation.Relu => nn.functional.relu(x),
        EncoderActivation.Tanh => tanh(x),
        _ => throw new ArgumentOutOfRangeException(nameof(activation)),
    };
}
