using Pargs.Models;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace Pargs.Tests.Models;

public class ColumnMajorTests
{
    static readonly long[] Prompt = { 1, 5, 9, 14, 3, 27 };

    // Another GEMM path sums in another order: equal up to float rounding, not bit for bit.
    static void AssertClose(float expected, float actual)
        => Assert.True(Math.Abs(expected - actual) <= 1e-4f * (1 + Math.Abs(expected)), $"expected {expected}, got {actual}");

    static float[] GreedyLogits(CausalLM model, int steps)
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        using var session = new BatchSession(model.Backbone, 1);
        var hidden = session.Prefill(new[] { Prompt.Select(i => (int)i).ToArray() });
        var all = new List<float>();
        for (int s = 0; s < steps; s++)
        {
            var logits = model.LogitsFromHidden(hidden);
            all.AddRange(logits.data<float>().ToArray());
            hidden = session.Step(logits.argmax(-1));
        }
        return all.ToArray();
    }

    [Theory]
    [InlineData("llama")]
    [InlineData("qwen2")]
    [InlineData("gpt2")]
    public void DecodingLayoutKeepsTheParametersAndTheLogits(string kind)
    {
        var config = kind switch { "llama" => TinyModels.LlamaConfig(), "qwen2" => TinyModels.Qwen2Config(), _ => TinyModels.Gpt2Config() };
        using var model = TinyModels.RandomLM(config);
        var before = model.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        var expected = GreedyLogits(model, 5);

        ColumnMajor.Apply(model);

        var after = model.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        Assert.All(before, kv => Assert.Same(kv.Value, after[kv.Key]));        // same Parameter objects, changed in place
        if (kind == "gpt2")
        {
            Assert.True(ColumnMajor.Is(after["transformer.wte.weight"]));              // the tied head
            Assert.True(after["transformer.h.0.attn.c_attn.weight"].is_contiguous());  // Conv1D is already [in, out]
        }
        else
        {
            Assert.True(ColumnMajor.Is(after["model.layers.0.self_attn.q_proj.weight"]));
            Assert.True(ColumnMajor.Is(after["model.layers.1.mlp.down_proj.weight"]));
            if (config.TieWordEmbeddings) Assert.True(ColumnMajor.Is(after["model.embed_tokens.weight"]));
            else
            {
                Assert.True(ColumnMajor.Is(after["lm_head.weight"]));
                Assert.True(after["model.embed_tokens.weight"].is_contiguous()); // untied: the table is only indexed
            }
        }
        var actual = GreedyLogits(model, 5);
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++) AssertClose(expected[i], actual[i]);

        ColumnMajor.Apply(model, columnMajor: false);
        Assert.All(model.parameters(), p => Assert.True(p.is_contiguous()));
    }

    [Fact]
    public void SnapshotIsContiguousAndLoadWritesThroughTheLayout()
    {
        var config = TinyModels.Qwen2Config();
        using var source = TinyModels.RandomLM(config, seed: 7);
        ColumnMajor.Apply(source);
        var saved = StateDict.Snapshot(source);
        Assert.All(saved.Values, t => Assert.True(t.is_contiguous()));
        var name = "model.layers.0.self_attn.q_proj.weight";
        Assert.True(saved[name].allclose(source.named_parameters().Single(p => p.name == name).parameter, 0, 0));

        using var target = TinyModels.RandomLM(config, seed: 8);
        ColumnMajor.Apply(target);
        StateDict.Load(target, saved, "test");
        foreach (var (n, p) in target.named_parameters())
            Assert.True(p.allclose(saved[n], 0, 0), n);
        Assert.True(ColumnMajor.Is(target.named_parameters().Single(p => p.name == name).parameter)); // copy_ kept the layout
    }

    [Fact]
    public void GradientsAreTheSameInBothLayouts()
    {
        var config = TinyModels.LlamaConfig();
        var ids = tensor(Prompt, 1, Prompt.Length);
        float[] Grad(bool columnMajor)
        {
            using var model = TinyModels.RandomLM(config, seed: 3);
            ColumnMajor.Apply(model, columnMajor);
            var loss = model.Logits(ids).log_softmax(-1).select(2, 4).sum();
            loss.backward();
            var w = model.named_parameters().Single(p => p.name == "model.layers.0.mlp.gate_proj.weight").parameter;
            return w.grad!.contiguous().data<float>().ToArray();
        }
        var row = Grad(false);
        var column = Grad(true);
        for (int i = 0; i < row.Length; i++) AssertClose(row[i], column[i]);
    }
}
