using Pargs.Decoding;
using Pargs.Decoding.Methods;
using Pargs.Engine;
using Pargs.Models;
using Pargs.Tests.Models;

namespace Pargs.Tests.Decoding;

/// <summary>
/// Continuous batching: rows that join a running batch at different steps, and leave it as they finish, give
/// exactly the tokens they give when decoded alone — the property a server's requests rely on.
/// </summary>
public class ContinuousDecoderTests
{
    static readonly string[] Prompts = { "abc", "hello", "q", "decoding", "amuchlongerpromptthantherest", "zz" };
    static readonly int[] JoinAtStep = { 0, 0, 2, 3, 5, 9 };

    [Theory]
    [InlineData("pargs", false)]
    [InlineData("args", false)]
    [InlineData("topk", false)]
    [InlineData("pargs", true)]
    public void Rows_joining_and_leaving_give_the_same_tokens_as_alone(string methodName, bool naiveEngine)
    {
        var config = TinyModels.LlamaConfig(40);
        var lm = TinyModels.RandomLM(config, seed: 7);
        lm.Tokenizer = new TestCharTokenizer(40);
        var rm = TinyModels.RandomRM(config, seed: 99);
        var method = (ITokenwiseOptions)DecodingMethods.Parse(methodName).Options(new MethodSettings { K = 5, W = 1.5 });
        // Different lengths per row, so rows leave at different steps while others keep running or join.
        int[] maxNew = { 6, 12, 3, 9, 5, 7 };
        var engine = naiveEngine ? LanguageModelEngine.Recompute(lm) : LanguageModelEngine.Cached(lm);
        var tokenizer = lm.Tokenizer!;
        var encoded = Prompts.Select(p => tokenizer.Encode(p, addBos: true)).ToArray();
        RowProgress NewRow(int i) => new(new DecodingContext(tokenizer, null, false, Array.Empty<string>(), maxNew[i]), i, 0, encoded[i]);

        var alone = Enumerable.Range(0, Prompts.Length).Select(i =>
        {
            var row = NewRow(i);
            new TokenwiseDecoder(engine, rm, method, new DecodingOptions { Method = method, Seed = 4, MaxNewTokens = maxNew[i], StopAtEos = false })
                .Run([encoded[i]], [row]);
            return row.Tokens.ToArray();
        }).ToList();

        using var decoder = new ContinuousDecoder(engine, rm, method, capacity: 64);
        var together = Enumerable.Range(0, Prompts.Length).Select(NewRow).ToArray();
        var finished = new List<RowProgress>();
        for (int step = 0; finished.Count < Prompts.Length; step++)
        {
            Assert.True(step < 100, "the decoder stopped making progress");
            for (int i = 0; i < Prompts.Length; i++)
                if (JoinAtStep[i] == step) decoder.Join(encoded[i], together[i], DecodingSteps.RowRandom(4, i, 0));
            finished.AddRange(decoder.Step());
        }
        Assert.Equal(0, decoder.Count);
        for (int i = 0; i < Prompts.Length; i++)
        {
            Assert.Equal(maxNew[i], together[i].Tokens.Count);
            Assert.Equal(alone[i], together[i].Tokens.ToArray());
        }
    }

    [Fact]
    public void A_cancelled_row_leaves_at_the_next_step_and_the_others_are_unaffected()
    {
        var config = TinyModels.LlamaConfig(40);
        var lm = TinyModels.RandomLM(config, seed: 3);
        lm.Tokenizer = new TestCharTokenizer(40);
        var rm = TinyModels.RandomRM(config, seed: 5);
        var method = new PargsOptions { K = 4, W = 1.0 };
        var engine = LanguageModelEngine.Cached(lm);
        var tok = lm.Tokenizer!;
        RowProgress Row(int i, string p) => new(new DecodingContext(tok, null, false, Array.Empty<string>(), 8), i, 0, tok.Encode(p, addBos: true));
        var alone = Row(1, "hello");
        new TokenwiseDecoder(engine, rm, method, new DecodingOptions { Method = method, Seed = 2, MaxNewTokens = 8, StopAtEos = false })
            .Run([tok.Encode("hello", addBos: true)], [alone]);

        using var decoder = new ContinuousDecoder(engine, rm, method, capacity: 32);
        var cancelled = Row(0, "abc");
        var kept = Row(1, "hello");
        decoder.Join(tok.Encode("abc", addBos: true), cancelled, DecodingSteps.RowRandom(2, 0, 0));
        decoder.Join(tok.Encode("hello", addBos: true), kept, DecodingSteps.RowRandom(2, 1, 0));
        decoder.Step();
        decoder.Step();
        decoder.Cancel(cancelled);
        Assert.Contains(cancelled, decoder.Step());
        Assert.Equal(2, cancelled.Tokens.Count);
        while (decoder.Count > 0) decoder.Step();
        Assert.Equal(alone.Tokens, kept.Tokens);
    }
}
