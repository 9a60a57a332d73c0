using Pargs.Models;
using System.Text;
using Pargs.Checkpoints;
using Pargs.Data;
using Pargs.Evaluation;
using Pargs.Tests.Checkpoints;
using Pargs.Training;
using Pargs.Tokenizers;
using TorchSharp;
using Xunit.Abstractions;

namespace Pargs.Tests.Fuzzing;

/// <summary>
/// The seeded mutational fuzzer over every reader of untrusted bytes (issue 13). Every reader in the untrusted-input
/// boundary must hold the invariant on every case (see <see cref="FuzzHarness"/>), config.json through the model
/// families and tokenizer.json through the tokenizer readers included (they parse through <c>CheckedJson</c>).
/// PARGS_FUZZ_STRICT is kept for readers a change brings in before they are hardened (<c>owned: false</c>).
/// </summary>
public class ReaderFuzzTests(ITestOutputHelper output)
{
    const int Seed = 20261206;
    static readonly Mutator Mutate = new(Seed);
    static bool Strict => Environment.GetEnvironmentVariable("PARGS_FUZZ_STRICT") == "1";

    void Holds(List<FuzzFailure> failures, bool owned = true)
    {
        foreach (var f in failures.Take(40)) output.WriteLine(f.ToString());
        if (owned || Strict)
            Assert.True(failures.Count == 0, $"{failures.Count} inputs broke the invariant:\n{FuzzHarness.Summary(failures)}");
        else
            Assert.True(failures.All(f => !f.Problem.Contains("a hang") && !f.Problem.Contains("allocated") && !f.Problem.StartsWith("took")),
                $"hangs or runaway allocations:\n{FuzzHarness.Summary(failures)}");
    }

    static byte[] SmallGguf()
    {
        var w = new RawGgufWriter(3)
            .String("general.architecture", "llama")
            .U32("llama.embedding_length", 8).U32("llama.feed_forward_length", 16).U32("llama.block_count", 1)
            .U32("llama.attention.head_count", 2).U32("llama.context_length", 32).F32("llama.attention.layer_norm_rms_epsilon", 1e-5f)
            .Strings("tokenizer.ggml.tokens", ["<unk>", "<s>", "</s>", "a"]).Floats("tokenizer.ggml.scores", [0, 0, 0, -1])
            .Ints("tokenizer.ggml.token_type", [2, 3, 3, 1]).U32("tokenizer.ggml.bos_token_id", 1)
            .Add("nested", 9, b => { b.Write(9u); b.Write(2UL); for (int i = 0; i < 2; i++) { b.Write(4u); b.Write(1UL); b.Write(7u); } })
            .Add("big", 10, b => b.Write(1UL << 40))
            .TensorF32("token_embd.weight", [8, 4], Enumerable.Range(0, 32).Select(i => i * 0.1f).ToArray())
            .Tensor("q8", [32], (uint)GgmlType.Q8_0, new byte[34]);
        return w.Build();
    }

    static void ReadGguf(string path, bool tensors)
    {
        var gguf = GgufFile.Read(path);
        if (tensors)
            foreach (var t in gguf.Tensors)
                try { gguf.ReadTensor(t).Dispose(); }
                catch (PargsException) { }
        try { GgufCheckpoint.ReadConfig(gguf); } catch (PargsException) { }
        GgufCheckpoint.ReadVocabulary(gguf);
    }

    [Fact]
    public void Gguf_headers_and_tensors()
    {
        var seed = SmallGguf();
        Holds(FuzzHarness.Run("gguf", FuzzHarness.Cases(150), c => Mutate.Binary(seed, c), "model.gguf", p => ReadGguf(p, tensors: true)));
    }

    [Fact]
    public void Gguf_shipped_stories260K_header()
    {
        var seed = File.ReadAllBytes(TestPaths.Stories260KGguf);
        Holds(FuzzHarness.Run("gguf-shipped", FuzzHarness.Cases(20), c => Mutate.Binary(seed, c + 1_000_000), "model.gguf", p => ReadGguf(p, tensors: false)));
    }

    [Fact]
    public void Safetensors()
    {
        using var temp = new TempDir();
        string path = temp.File("seed.safetensors");
        using (var a = HeldScalars.Arange(6, torch.ScalarType.Float32).reshape(2, 3))
        using (var b = torch.ones(4))
            Pargs.Checkpoints.Safetensors.Save(path, new Dictionary<string, torch.Tensor> { ["a"] = a, ["b"] = b });
        var seed = File.ReadAllBytes(path);
        string header = Encoding.UTF8.GetString(seed, 8, (int)BitConverter.ToUInt64(seed, 0));
        byte[] Case(int c)
        {
            if (c % 2 == 0) return Mutate.Binary(seed, c);
            // A structural mutation of the JSON header, re-framed with its new length.
            var json = Mutate.Json(header.TrimEnd(), c);
            return [.. BitConverter.GetBytes((ulong)json.Length), .. json, .. seed.AsSpan(8 + header.Length)];
        }
        Holds(FuzzHarness.Run("safetensors", FuzzHarness.Cases(150), Case, "model.safetensors", p =>
        {
            foreach (var t in Pargs.Checkpoints.Safetensors.Load(p).Values) t.Dispose();
        }));
    }

    [Fact]
    public void Llama2c_bin()
    {
        int[] header = [8, 16, 1, 2, 2, 16, 4]; // dim, hidden, layers, heads, kv heads, vocab (shared), seq_len
        var random = new Random(3);
        var floats = Enumerable.Range(0, 808).Select(_ => (float)random.NextDouble()).ToArray();
        byte[] seed = [.. header.SelectMany(BitConverter.GetBytes), .. floats.SelectMany(BitConverter.GetBytes)];
        Holds(FuzzHarness.Run("llama2c", FuzzHarness.Cases(150), c => Mutate.Binary(seed, c), "model.bin", p => Llama2cCheckpoint.Load(p).Dispose()));
    }

    [Fact]
    public void Preference_jsonl()
    {
        string[] rows =
        [
            """{"prompt": "Once", "chosen": " upon a time", "rejected": " there was"}""",
            """{"chosen": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}], "rejected": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Go away."}]}""",
            """{"prompt": "Tim", "chosen": " ran home.", "rejected": " sat.", "margin": 0.5}""",
        ];
        string text = string.Join("\n", rows) + "\n";
        byte[] Case(int c)
        {
            if (c % 3 == 0) return Mutate.Binary(Encoding.UTF8.GetBytes(text), c);
            var mutated = rows.Select(r => r).ToArray();
            int row = c % rows.Length;
            mutated[row] = Encoding.UTF8.GetString(Mutate.Json(rows[row], c));
            return Encoding.UTF8.GetBytes(string.Join("\n", mutated) + "\n");
        }
        Holds(FuzzHarness.Run("preference-jsonl", FuzzHarness.Cases(150), Case, "pairs.jsonl", p =>
        {
            try { PreferenceReader.Read(p); } catch (PargsException) { }
            PreferenceReader.Read(p, new PreferenceReadOptions { OnBadRow = BadRowPolicy.Skip, Template = PromptTemplate.Hh });
        }));
    }

    [Fact]
    public void Prompt_files_and_generation_files()
    {
        const string prompts = "# stories\nOnce upon a time\n{\"prompt\": \"Tim was\"}\n\n{\"instruction\": \"Lily\"}\r\n";
        Holds(FuzzHarness.Run("prompts", FuzzHarness.Cases(100), c => c % 2 == 0
            ? Mutate.Binary(Encoding.UTF8.GetBytes(prompts), c)
            : Encoding.UTF8.GetBytes("Once\n" + Encoding.UTF8.GetString(Mutate.Json("""{"prompt": "Tim was"}""", c)).Replace("\n", " ") + "\n"),
            "prompts.txt", p => PromptFile.Read(p)));
        const string generation = """{"instruction": "Once", "output": " a cat.", "method": "pargs", "w": 1.5, "k": 10, "seed": 1, "tokens": 3, "reward": 0.5}""";
        Holds(FuzzHarness.Run("generations", FuzzHarness.Cases(100), c => c % 2 == 0
            ? Mutate.Binary(Encoding.UTF8.GetBytes(generation + "\n" + generation + "\n"), c)
            : [.. Mutate.Json(generation, c), (byte)'\n'],
            "generations.jsonl", p => GenerationJsonl.Read(p)));
    }

    [Fact]
    public void Trainer_state_json()
    {
        const string state = """
            {"global_step": 4, "seed": 17, "batch_size": 3, "gradient_accumulation_steps": 1,
             "log_history": [{"step": 2, "epoch": 0.5, "loss": 0.69, "accuracy": null}, {"step": 4, "epoch": 1, "loss": 0.6}]}
            """;
        Holds(FuzzHarness.Run("trainer-state", FuzzHarness.Cases(100), c => Mutate.Json(state, c), TrainingCheckpoints.StateFile,
            p => TrainingCheckpoints.ReadState(p)));
    }

    [Fact]
    public void Optimizer_bin()
    {
        using var temp = new TempDir();
        var model = torch.nn.Linear(4, 3);
        var optimizer = new Pargs.Training.Optimizers.AdamW(model.parameters(), 1e-3, 0.9, 0.999, 1e-8, 0); // its step holds its Scalars
        using (var loss = model.forward(torch.ones(2, 4)).sum()) loss.backward();
        optimizer.step();
        string path = temp.File("optimizer.bin");
        optimizer.save_state_dict(path);
        var seed = File.ReadAllBytes(path);
        TrainingCheckpoints.LoadOptimizerState(path, optimizer); // the seed itself loads
        Holds(FuzzHarness.Run("optimizer-bin", FuzzHarness.Cases(150), c => Mutate.Binary(seed, c), TrainingCheckpoints.OptimizerFile,
            p => TrainingCheckpoints.LoadOptimizerState(p, optimizer)));
    }

    [Fact]
    public void Config_json_through_the_checkpoint_loader()
    {
        string shipped = TestPaths.ShippedPartialRm;
        string config = File.ReadAllText(Path.Combine(shipped, "config.json"));
        Holds(FuzzHarness.Run("config-json", FuzzHarness.Cases(60), c => Mutate.Json(config, c), "config.json",
            p => CheckpointLoader.Load(Path.GetDirectoryName(p)!).Dispose(),
            prepare: folder => File.Copy(Path.Combine(shipped, "model.safetensors"), Path.Combine(folder, "model.safetensors"))));
    }

    [Fact]
    public void Tokenizer_json_through_the_tokenizer_loader()
    {
        using var contents = CheckpointLoader.Load(TestPaths.ShippedPartialRm);
        string json = File.ReadAllText(Path.Combine(TestPaths.ShippedPartialRm, "tokenizer.json"));
        Holds(FuzzHarness.Run("tokenizer-json", FuzzHarness.Cases(30), c => Mutate.Json(json, c), "tokenizer.json", p =>
        {
            var tokenizer = TokenizerLoader.ForCheckpoint(contents, p);
            var ids = tokenizer.Encode("Once upon a time, Tim saw a big dog.", addBos: true);
            tokenizer.Decode(ids);
        }));
        var bin = File.ReadAllBytes(TestPaths.Stories260KTokenizer);
        Holds(FuzzHarness.Run("tokenizer-bin", FuzzHarness.Cases(30), c => Mutate.Binary(bin, c), "tok512.bin", p =>
        {
            var tokenizer = TokenizerLoader.ForCheckpoint(contents, p);
            tokenizer.Decode(tokenizer.Encode("Once upon a time", addBos: true));
        }));
    }
}
