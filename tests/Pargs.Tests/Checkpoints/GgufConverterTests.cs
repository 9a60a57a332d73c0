using Pargs.Checkpoints;
using Pargs.Models;
using static TorchSharp.torch;

namespace Pargs.Tests.Checkpoints;

/// <summary>
/// <c>pargs convert --to gguf</c> in the library: the metadata keys, tensor names, layouts and types llama.cpp
/// expects (llama.cpp's own acceptance is LlamaCppGoldenTests), and the round trip back into Pargs.
/// </summary>
public class GgufConverterTests
{
    static bool Same(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>();

    static (string Folder, string Gguf) Convert(TempDir dir, string name, GgufOutputType type = GgufOutputType.F32)
    {
        string folder = dir.File(name);
        ReferenceCheckpoints.Write(name, folder);
        string gguf = dir.File($"{name}-{type}.gguf");
        GgufConverter.Convert(folder, gguf, type);
        return (folder, gguf);
    }

    [Fact]
    public void Llama_metadata_uses_llama_cpp_keys_and_types()
    {
        using var dir = new TempDir();
        var (_, path) = Convert(dir, "llama");
        var gguf = GgufFile.Read(path);
        var config = ReferenceCheckpoints.Config("llama");
        Assert.Equal(3u, gguf.Version);
        Assert.Equal("llama", gguf.GetString("general.architecture"));
        Assert.Equal(0L, gguf.GetInteger("general.file_type"));
        Assert.Equal(config.MaxPositions, gguf.GetInteger("llama.context_length"));
        Assert.Equal(config.HiddenSize, gguf.GetInteger("llama.embedding_length"));
        Assert.Equal(config.NumLayers, gguf.GetInteger("llama.block_count"));
        Assert.Equal(config.IntermediateSize, gguf.GetInteger("llama.feed_forward_length"));
        Assert.Equal(config.NumHeads, gguf.GetInteger("llama.attention.head_count"));
        Assert.Equal(config.NumKvHeads, gguf.GetInteger("llama.attention.head_count_kv"));
        Assert.Equal(config.HeadDim, gguf.GetInteger("llama.rope.dimension_count"));
        Assert.Equal(config.RopeTheta, gguf.GetNumber("llama.rope.freq_base"));
        Assert.Equal(config.NormEps, gguf.GetNumber("llama.attention.layer_norm_rms_epsilon"));
        Assert.Equal("llama", gguf.GetString("tokenizer.ggml.model"));
        Assert.Equal(1L, gguf.GetInteger("tokenizer.ggml.bos_token_id"));
        Assert.Equal(2L, gguf.GetInteger("tokenizer.ggml.eos_token_id"));
        Assert.Equal(0L, gguf.GetInteger("tokenizer.ggml.unknown_token_id"));
        Assert.Equal(true, gguf.Metadata["tokenizer.ggml.add_bos_token"]);

        // 335 tokens padded to the embedding's 340 rows; byte pieces typed BYTE, merged pieces scored by merge rank.
        var tokens = (string[])gguf.Metadata["tokenizer.ggml.tokens"];
        var types = (int[])gguf.Metadata["tokenizer.ggml.token_type"];
        var scores = (float[])gguf.Metadata["tokenizer.ggml.scores"];
        Assert.Equal(config.VocabSize, tokens.Length);
        Assert.Equal(new[] { "[PAD335]", "[PAD339]" }, new[] { tokens[335], tokens[339] });
        Assert.Equal(GgufVocabulary.Unused, types[339]);
        Assert.Equal(new[] { GgufVocabulary.Unknown, GgufVocabulary.Control, GgufVocabulary.Control }, types[..3]);
        Assert.Equal("<0x0A>", tokens[3 + 10]);
        Assert.Equal(GgufVocabulary.Byte, types[3 + 10]);
        Assert.Equal(-1f, scores[287]); // the first merge's piece
        Assert.True(scores[287] > scores[288]);

        Assert.Equal(new[] { "token_embd.weight", "blk.0.attn_norm.weight" }, gguf.Tensors.Take(2).Select(t => t.Name));
        Assert.Contains(gguf.Tensors, t => t.Name == "output.weight"); // untied head
        Assert.Equal(new long[] { config.KvDim, config.HiddenSize }, gguf.Find("blk.1.attn_k.weight")!.Shape);
    }

    [Fact]
    public void Query_and_key_rows_are_in_meta_rotary_layout_for_llama_and_untouched_for_qwen2()
    {
        using var dir = new TempDir();
        foreach (var name in new[] { "llama", "qwen2" })
        {
            var (folder, path) = Convert(dir, name);
            using var hf = HuggingFaceFolder.Load(folder);
            var gguf = GgufFile.Read(path);
            var config = hf.Config;
            using var q = gguf.ReadTensor("blk.0.attn_q.weight");
            using var k = gguf.ReadTensor("blk.0.attn_k.weight");
            var hfQ = hf.Tensors["model.layers.0.self_attn.q_proj.weight"];
            var hfK = hf.Tensors["model.layers.0.self_attn.k_proj.weight"];
            if (name == "llama")
            {
                // Meta's row order within a head: pairs (x0, x_{d/2}), (x1, x_{d/2+1})… interleaved.
                int d = config.HeadDim;
                for (int row = 0; row < d; row++)
                {
                    int hfRow = row % 2 == 0 ? row / 2 : d / 2 + row / 2;
                    Assert.True(Same(q[row], hfQ[hfRow]), $"q row {row}");
                    Assert.True(Same(k[d + row], hfK[d + hfRow]), $"k head 1 row {row}");
                }
            }
            else
            {
                Assert.True(Same(q, hfQ));
                Assert.True(Same(k, hfK));
                using var bias = gguf.ReadTensor("blk.1.attn_v.bias");
                Assert.True(Same(bias, hf.Tensors["model.layers.1.self_attn.v_proj.bias"]));
            }
        }
    }

    [Theory]
    [InlineData("llama")]
    [InlineData("mistral")]
    [InlineData("qwen2")]
    [InlineData("qwen3")]
    [InlineData("gpt2")]
    public void F32_gguf_loads_back_in_pargs_to_the_same_tensors_and_logits(string name)
    {
        using var dir = new TempDir();
        var (folder, path) = Convert(dir, name);
        using var hf = CheckpointLoader.Load(folder);
        using var back = CheckpointLoader.Load(path);
        // Mistral is llama.cpp's "llama", so it comes back as a Llama config; nothing else changes.
        Assert.Equal(name == "mistral" ? "llama" : name, back.Config.ModelType);
        Assert.Equal(hf.Config with { ModelType = back.Config.ModelType }, back.Config);
        Assert.Equal(hf.Tensors.Keys.Order(), back.Tensors.Keys.Order());
        foreach (var (tensorName, t) in hf.Tensors)
            Assert.True(Same(t, back.Tensors[tensorName]), tensorName);
        using var a = CausalLM.FromCheckpoint(hf);
        using var b = CausalLM.FromCheckpoint(back);
        using var ids = tensor(new long[] { 5, 70, 200, 33, 7, 250 }, [1, 6]);
        using var _ = no_grad();
        Assert.True(Same(a.Logits(ids), b.Logits(ids)));
    }

    /// <summary>
    /// Qwen3's explicit head width travels as llama.cpp's attention.key_length / value_length (its q/k norms as
    /// attn_q_norm / attn_k_norm), and so does any other family's head_dim that is not hidden/heads; a Qwen3 with
    /// attention_bias is refused, since llama.cpp's "qwen3" has no o_proj bias.
    /// </summary>
    [Fact]
    public void Explicit_head_widths_are_key_lengths_and_a_qwen3_attention_bias_is_refused()
    {
        using var dir = new TempDir();
        var (_, path) = Convert(dir, "qwen3");
        var gguf = GgufFile.Read(path);
        Assert.Equal("qwen3", gguf.GetString("general.architecture"));
        Assert.Equal(24L, gguf.GetInteger("qwen3.attention.key_length"));
        Assert.Equal(24L, gguf.GetInteger("qwen3.attention.value_length"));
        Assert.Equal(new long[] { 24 }, gguf.Find("blk.1.attn_k_norm.weight")!.Shape);
        Assert.Equal(new long[] { 4 * 24, 64 }, gguf.Find("blk.0.attn_q.weight")!.Shape);

        // The plain reference llama (head width = hidden/heads) writes no key length, as llama.cpp's converter does.
        var (plainFolder, plain) = Convert(dir, "llama");
        Assert.Null(GgufFile.Read(plain).GetInteger("llama.attention.key_length"));
        // A Llama with head_dim 24 (heads × head_dim 96 ≠ hidden 64) round-trips through the key length.
        var llama = ReferenceCheckpoints.Config("llama") with { HeadDim = 24 };
        string folder = dir.File("llama-head24");
        HuggingFaceFolder.Save(folder, llama, "LlamaForCausalLM", HuggingFaceFolderTests.RandomTensors(llama, "LlamaForCausalLM", 5));
        CopyTokenizer(plainFolder, folder);
        string llamaGguf = dir.File("llama-head24.gguf");
        GgufConverter.Convert(folder, llamaGguf, GgufOutputType.F32);
        Assert.Equal(24L, GgufFile.Read(llamaGguf).GetInteger("llama.attention.key_length"));
        using var back = CheckpointLoader.Load(llamaGguf);
        Assert.Equal(24, back.Config.HeadDim);

        var biased = ReferenceCheckpoints.Config("qwen3") with { AttentionBias = true, AttentionOutputBias = true };
        string biasedFolder = dir.File("qwen3-bias");
        HuggingFaceFolder.Save(biasedFolder, biased, "Qwen3ForCausalLM", HuggingFaceFolderTests.RandomTensors(biased, "Qwen3ForCausalLM", 6));
        CopyTokenizer(dir.File("qwen3"), biasedFolder);
        var e = Assert.Throws<PargsException>(() => GgufConverter.Convert(biasedFolder, dir.File("qwen3-bias.gguf"), GgufOutputType.F32));
        Assert.Contains("attention_bias true (qwen3)", e.Message);
        Assert.False(File.Exists(dir.File("qwen3-bias.gguf")));
    }

    static void CopyTokenizer(string from, string to)
    {
        foreach (var file in new[] { HuggingFaceFolder.TokenizerFile, "tokenizer_config.json" })
            File.Copy(Path.Combine(from, file), Path.Combine(to, file));
    }

    [Theory]
    [InlineData(GgufOutputType.F16, 1L)]
    [InlineData(GgufOutputType.BF16, 32L)]
    public void Half_types_store_matrices_rounded_and_keep_vectors_f32(GgufOutputType type, long fileType)
    {
        using var dir = new TempDir();
        var (folder, path) = Convert(dir, "qwen2", type);
        var gguf = GgufFile.Read(path);
        Assert.Equal(fileType, gguf.GetInteger("general.file_type"));
        var half = type == GgufOutputType.F16 ? GgmlType.F16 : GgmlType.BF16;
        Assert.All(gguf.Tensors, t => Assert.Equal(t.Shape.Length == 1 ? GgmlType.F32 : half, t.Type));
        using var hf = HuggingFaceFolder.Load(folder);
        var original = hf.Tensors["model.layers.0.mlp.up_proj.weight"].data<float>().ToArray();
        using var stored = gguf.ReadTensor("blk.0.ffn_up.weight");
        var expected = type == GgufOutputType.F16
            ? original.Select(v => (float)(Half)v).ToArray()
            : original.Select(v => BitConverter.UInt32BitsToSingle((uint)GgufConverter.ToBFloat16(v) << 16)).ToArray();
        Assert.Equal(expected, stored.data<float>().ToArray());
        using var norm = gguf.ReadTensor("blk.0.attn_norm.weight");
        Assert.True(Same(norm, hf.Tensors["model.layers.0.input_layernorm.weight"]));
    }

    [Fact]
    public void Bfloat16_rounds_to_nearest_even_and_keeps_nan()
    {
        Assert.Equal(0x3F80, GgufConverter.ToBFloat16(1f));
        Assert.Equal(0x3F80, GgufConverter.ToBFloat16(BitConverter.UInt32BitsToSingle(0x3F808000))); // tie → even (down)
        Assert.Equal(0x3F82, GgufConverter.ToBFloat16(BitConverter.UInt32BitsToSingle(0x3F818000))); // tie → even (up)
        Assert.Equal(0x3F81, GgufConverter.ToBFloat16(BitConverter.UInt32BitsToSingle(0x3F808001))); // above the tie
        Assert.True(float.IsNaN(BitConverter.UInt32BitsToSingle((uint)GgufConverter.ToBFloat16(float.NaN) << 16)));
        Assert.Equal(0x7F80, GgufConverter.ToBFloat16(float.PositiveInfinity));
    }

    [Fact]
    public void Byte_level_vocabularies_are_gpt2_with_merges_and_the_pre_tokenizer_name()
    {
        using var dir = new TempDir();
        var (_, gpt2) = Convert(dir, "gpt2");
        var (_, qwen2) = Convert(dir, "qwen2");
        var g = GgufFile.Read(gpt2);
        Assert.Equal("gpt2", g.GetString("general.architecture"));
        Assert.Equal(1e-5, g.GetNumber("gpt2.attention.layer_norm_epsilon")!.Value, 12);
        Assert.Equal(new[] { "position_embd.weight", "blk.0.attn_qkv.weight" }.Order(), g.Tensors.Select(t => t.Name).Where(n => n is "position_embd.weight" or "blk.0.attn_qkv.weight").Order());
        Assert.Equal(new long[] { 3 * 64, 64 }, g.Find("blk.0.attn_qkv.weight")!.Shape); // [out, in], not Conv1D's [in, out]
        Assert.Equal("gpt2", g.GetString("tokenizer.ggml.model"));
        Assert.Equal("gpt-2", g.GetString("tokenizer.ggml.pre"));
        Assert.Equal(40, ((string[])g.Metadata["tokenizer.ggml.merges"]).Length);
        Assert.Equal(false, g.Metadata["tokenizer.ggml.add_bos_token"]);
        var q = GgufFile.Read(qwen2);
        Assert.Equal("qwen2", q.GetString("tokenizer.ggml.pre"));
        var types = (int[])q.Metadata["tokenizer.ggml.token_type"];
        var tokens = (string[])q.Metadata["tokenizer.ggml.tokens"];
        Assert.Equal("<|im_end|>", tokens[319]);
        Assert.Equal(GgufVocabulary.Control, types[319]);
        Assert.Equal(317L, q.GetInteger("tokenizer.ggml.padding_token_id"));
        Assert.Null(q.GetInteger("tokenizer.ggml.bos_token_id"));
        // Pargs reads SentencePiece vocabularies from GGUF only; a byte-level one is refused, not misread.
        var e = Assert.Throws<PargsException>(() => GgufCheckpoint.ReadVocabulary(q));
        Assert.Contains("tokenizer.ggml.model \"gpt2\"", e.Message);
    }

    [Fact]
    public void Unsupported_quantized_types_and_reward_models_are_refused_by_name()
    {
        Assert.Equal("--type q5_k_m is not supported yet (pargs convert writes f32, f16, bf16, q8_0, q4_0 and q4_k)",
            Assert.Throws<PargsException>(() => GgufConverter.ParseType("Q5_K_M")).Message);
        Assert.Equal(GgufOutputType.Q4_K_M, GgufConverter.ParseType("Q4_K"));
        Assert.Contains("--type q5_0 is not supported yet", Assert.Throws<PargsException>(() => GgufConverter.ParseType("q5_0")).Message);
        Assert.Contains("--type f8", Assert.Throws<PargsException>(() => GgufConverter.ParseType("f8")).Message);

        // Llama-family reward models convert (StoredRewardModelTests); others have no reader of the result.
        using var dir = new TempDir();
        var config = Models.TinyModels.Gpt2Config();
        string rm = dir.File("rm");
        HuggingFaceFolder.Save(rm, config, "GPT2ForSequenceClassification", HuggingFaceFolderTests.RandomTensors(config, "GPT2ForSequenceClassification", 3),
            extraConfig: new Dictionary<string, System.Text.Json.Nodes.JsonNode?> { ["num_labels"] = 1 });
        var e = Assert.Throws<PargsException>(() => GgufConverter.Convert(rm, dir.File("rm.gguf"), GgufOutputType.F32));
        Assert.Contains("reward model", e.Message);
        Assert.Contains("llama, mistral, qwen2 and qwen3", e.Message);
        Assert.False(File.Exists(dir.File("rm.gguf")));
    }

    [Fact]
    public void Stories260K_converts_from_gguf_v1_to_v3_with_its_sentencepiece_vocabulary()
    {
        using var dir = new TempDir();
        string path = dir.File("s.gguf");
        GgufConverter.Convert(TestPaths.Stories260KGguf, path, GgufOutputType.F32);
        var original = GgufFile.Read(TestPaths.Stories260KGguf);
        var converted = GgufFile.Read(path);
        Assert.Equal(1u, original.Version);
        Assert.Equal(3u, converted.Version);
        Assert.Equal(original.Metadata["tokenizer.ggml.tokens"], converted.Metadata["tokenizer.ggml.tokens"]);
        Assert.Equal(original.Metadata["tokenizer.ggml.scores"], converted.Metadata["tokenizer.ggml.scores"]);
        // The v1 file stores q/k in Meta's layout already; Pargs un-permutes at load and re-permutes at write.
        // Its output.weight copies token_embd exactly: Pargs loads that as tied, and the converter writes no copy.
        using (var head = original.ReadTensor("output.weight"))
        using (var embedding = original.ReadTensor("token_embd.weight"))
            Assert.True(Same(head, embedding));
        Assert.Null(converted.Find("output.weight"));
        foreach (var info in original.Tensors.Where(t => t.Name != "output.weight"))
        {
            using var a = original.ReadTensor(info);
            using var b = converted.ReadTensor(info.Name);
            Assert.True(Same(a, b), info.Name);
        }
    }

    [Fact]
    public void Rope_scaling_is_refused_and_a_sliding_window_caps_the_context()
    {
        using var dir = new TempDir();
        string llama = dir.File("llama");
        ReferenceCheckpoints.Write("llama", llama);
        string configPath = Path.Combine(llama, "config.json");
        var json = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(configPath))!.AsObject();
        json["rope_scaling"] = new System.Text.Json.Nodes.JsonObject { ["rope_type"] = "llama3", ["factor"] = 8.0 };
        File.WriteAllText(configPath, json.ToJsonString());
        var e = Assert.Throws<PargsException>(() => GgufConverter.Convert(llama, dir.File("l.gguf"), GgufOutputType.F32));
        Assert.Contains("rope_scaling", e.Message);
        Assert.Contains(configPath, e.Message);

        string mistral = dir.File("mistral");
        ReferenceCheckpoints.Write("mistral", mistral);
        configPath = Path.Combine(mistral, "config.json");
        json = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(configPath))!.AsObject();
        json["sliding_window"] = 64;
        File.WriteAllText(configPath, json.ToJsonString());
        var summary = GgufConverter.Convert(mistral, dir.File("m.gguf"), GgufOutputType.F32);
        Assert.Contains("sliding_window 64", Assert.Single(summary.Notes));
        Assert.Equal(64L, GgufFile.Read(dir.File("m.gguf")).GetInteger("llama.context_length"));
    }

    [Fact]
    public void Llama_query_and_key_biases_are_permuted_with_their_rows_and_come_back()
    {
        using var dir = new TempDir();
        var config = HuggingFaceFolderTests.TinyLlama(tied: false) with { AttentionBias = true, AttentionOutputBias = true };
        var tensors = HuggingFaceFolderTests.RandomTensors(config, "LlamaForCausalLM", 5);
        using var contents = new CheckpointContents { Config = config, Tensors = tensors, Source = "(memory)", Format = "hf-folder", Architecture = "LlamaForCausalLM" };
        var pieces = Enumerable.Range(0, config.VocabSize).Select(i => $"t{i}").ToArray();
        var vocabulary = new GgufVocabulary { Model = "llama", Tokens = pieces, TokenTypes = new int[pieces.Length].Select(_ => GgufVocabulary.Normal).ToArray(), Scores = new float[pieces.Length] };
        string path = dir.File("bias.gguf");
        GgufConverter.Build(contents, vocabulary, GgufOutputType.F32, "bias").Save(path);
        using var q = GgufFile.Read(path).ReadTensor("blk.0.attn_q.bias");
        using var expected = MetaRotaryLayout.FromHuggingFace(tensors["model.layers.0.self_attn.q_proj.bias"], config.NumHeads);
        Assert.True(Same(expected, q));
        using var back = CheckpointLoader.Load(path);
        Assert.True(back.Config.AttentionBias);
        foreach (var name in new[] { "q_proj", "k_proj", "v_proj" })
            Assert.True(Same(tensors[$"model.layers.1.self_attn.{name}.bias"], back.Tensors[$"model.layers.1.self_attn.{name}.bias"]), name);
    }

    [Fact]
    public void A_byte_level_gguf_vocabulary_becomes_pargs_tokenizer_and_an_unknown_pre_tokenizer_is_refused()
    {
        using var dir = new TempDir();
        var (folder, path) = Convert(dir, "qwen2");
        using var contents = CheckpointLoader.Load(path);
        var fromGguf = Pargs.Tokenizers.TokenizerLoader.ForCheckpoint(contents);
        var fromJson = Pargs.Tokenizers.TokenizerJson.Load(Path.Combine(folder, "tokenizer.json"));
        Assert.IsType<Pargs.Tokenizers.ByteLevelBpeTokenizer>(fromGguf);
        const string text = "Hello <|im_start|>user\nthe sailor waved, 123 times!<|im_end|>";
        Assert.Equal(fromJson.Encode(text), fromGguf.Encode(text));
        Assert.True(fromGguf.IsSpecial(319));

        var bytes = File.ReadAllBytes(path);
        var pre = System.Text.Encoding.UTF8.GetBytes("qwen2");
        // Same length, another name: "qwen9" is no pre-tokenizer Pargs (or llama.cpp) knows.
        int at = System.Text.Encoding.Latin1.GetString(bytes).IndexOf("tokenizer.ggml.pre", StringComparison.Ordinal) + "tokenizer.ggml.pre".Length + 4 + 8;
        Assert.Equal(pre, bytes[at..(at + 5)]);
        bytes[at + 4] = (byte)'9';
        string bad = dir.File("bad-pre.gguf");
        File.WriteAllBytes(bad, bytes);
        using var badContents = CheckpointLoader.Load(bad);
        var e = Assert.Throws<PargsException>(() => Pargs.Tokenizers.TokenizerLoader.ForCheckpoint(badContents));
        Assert.Contains("tokenizer.ggml.pre \"qwen9\"", e.Message);
        Assert.Contains(bad, e.Message);
    }
}
