using Pargs.Decoding;
using Pargs.Decoding.Methods;
using Pargs.Tests.Models;

namespace Pargs.Tests.Decoding;

/// <summary>A model with several EOS ids (Llama-3 instruct's &lt;|end_of_text|&gt; and &lt;|eot_id|&gt;) stops on any of them.</summary>
public class EosListTests
{
    [Fact]
    public void Generation_stops_on_every_eos_id_of_the_config_and_of_generation_config()
    {
        var config = TinyModels.LlamaConfig(40);
        var lm = TinyModels.RandomLM(config, seed: 7);
        lm.Tokenizer = new TestCharTokenizer(40);
        var options = new DecodingOptions { Method = new GreedyOptions(), MaxNewTokens = 8 };
        var free = TextGenerator.Generate(lm, null, ["abc"], options with { StopAtEos = false }).Single();
        int third = free.TokenIds[2];
        Assert.DoesNotContain(third, free.TokenIds.Take(2));

        // As the second id of config.json's eos_token_id list.
        var listed = TinyModels.RandomLM(config with { MoreEosTokenIds = new Pargs.Models.ValueList<int>([third]) }, seed: 7);
        listed.Tokenizer = lm.Tokenizer;
        var stopped = TextGenerator.Generate(listed, null, ["abc"], options).Single();
        Assert.Equal("eos", stopped.FinishReason);
        Assert.Equal(free.TokenIds.Take(2), stopped.TokenIds);

        // As generation_config.json's eos_token_id list.
        lm.Generation = new Pargs.Checkpoints.GenerationDefaults(null, null, null, null, [third]);
        var fromGeneration = TextGenerator.Generate(lm, null, ["abc"], options).Single();
        Assert.Equal("eos", fromGeneration.FinishReason);
        Assert.Equal(free.TokenIds.Take(2), fromGeneration.TokenIds);
    }
}
