using Pargs.Decoding;
using Pargs.Models;
using Pargs.Tests.Tokenizers;

namespace Pargs.Tests.Models;

/// <summary>
/// The shipped stories260K checkpoint, greedy, prompt "Once upon a time" with BOS, 64 positions in all:
/// exactly the reference ids and text that llama2.c's run.c produces (../shared/assets/stories260K/SOURCE.md),
/// from both the GGUF and the llama2.c file.
/// </summary>
public class Stories260KGoldenTests
{
    const string ReferenceText =
        "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball. She wanted to play with it, but it was too high.\nLily";
    static readonly int[] ReferencePromptIds = { 1, 403, 407, 261, 378 };
    static readonly int[] ReferenceFirstIds = { 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426 };

    public static TheoryData<string> Files => new() { "tinyllamas-stories-260k-f32.gguf", "stories260K.bin" };

    [Theory, MemberData(nameof(Files))]
    public void Greedy_generation_reproduces_the_reference_exactly(string file)
    {
        using var lm = CausalLM.Load(Path.Combine(TokenizerTestData.RepoRoot(), "data", "models", "stories260K", file));
        Assert.Equal(ReferencePromptIds, lm.Tokenizer!.Encode("Once upon a time", addBos: true));
        var options = new DecodingOptions { Method = new Pargs.Decoding.Methods.GreedyOptions(), MaxNewTokens = 64 - ReferencePromptIds.Length + 1, StopAtEos = true };
        // run.c with steps = 64 runs positions 0..63 and emits a token at each, the last one predicted at position 63.
        var result = TextGenerator.Generate(lm, null, new[] { "Once upon a time" }, options).Single();
        Assert.Equal(ReferenceFirstIds, result.TokenIds.Take(ReferenceFirstIds.Length));
        Assert.Equal(ReferenceText, "Once upon a time" + result.Output);
    }
}
