namespace Pargs.Rewards;

/// <summary>
/// How an encoder reward model reads (prompt, response) — one setting, saved with the model in config.json as
/// <c>pargs_input</c>, because the scores are only meaningful when decoding feeds the model what it was trained on.
/// </summary>
public enum EncoderInput
{
    /// <summary>"text": prompt + response as one sequence ([CLS] text [SEP]); the default (sentiment and toxicity classifiers).</summary>
    Text,
    /// <summary>
    /// "pair": the prompt as the first sequence and the response as the second, with the special tokens and token
    /// type ids of the tokenizer's post-processor ([CLS] prompt [SEP] response [SEP]) — question/answer reward models
    /// such as OpenAssistant's DeBERTa RMs.
    /// </summary>
    Pair,
}

public static class EncoderInputs
{
    /// <summary>config.json field holding the setting.</summary>
    public const string ConfigField = "pargs_input";

    public static EncoderInput? Parse(string value) => value switch { "text" => EncoderInput.Text, "pair" => EncoderInput.Pair, _ => null };

    public static string ToConfigValue(this EncoderInput input) => input == EncoderInput.Pair ? "pair" : "text";
}
