using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Pargs.Models;
using Pargs.Tokenizers;
using TorchSharp;

namespace Pargs.Checkpoints;

/// <summary>
/// Tiny checkpoints in the real Hugging Face format (config.json, model.safetensors, tokenizer.json),
/// one per family, with every structural field set (GQA, q/k/v biases, untied and tied heads, rope
/// theta, norm epsilon, vocabulary padded past the tokenizer). Weights come from a seeded SplitMix64
/// stream, not from torch's generator, so the same bytes come out on any machine and libtorch version:
/// tools/llamacpp-reference regenerates llama.cpp's goldens from them, and the tests rebuild them to
/// compare Pargs against those goldens. The tokenizers are small BPEs trained here on a fixed text.
/// </summary>
public static class ReferenceCheckpoints
{
    public static readonly IReadOnlyList<string> Names = ["llama", "mistral", "qwen2", "gpt2", "phi3", "gpt_neox", "gpt_neox-sequential", "qwen3", "llama3"];

    const string Corpus =
        "Once upon a time there was a little girl who loved the sea. Every day she walked to the shore and " +
        "watched the boats come in. One day a small boat came in with a big red sail, and the girl waved at " +
        "the sailor. He waved back and said hello. The girl smiled, because the sea was kind to her today.";

    public static ModelConfig Config(string name) => name switch
    {
        // GQA 4:2, untied head, a non-default rope theta; 340 rows for a 335-token vocabulary (5 padding rows).
        "llama" => new ModelConfig
        {
            ModelType = "llama", VocabSize = 340, HiddenSize = 64, IntermediateSize = 96,
            NumLayers = 2, NumHeads = 4, NumKvHeads = 2, MaxPositions = 128, RopeTheta = 500000.0, NormEps = 1e-5,
            TieWordEmbeddings = false, BosTokenId = 1, EosTokenId = 2,
        },
        // Llama 3.x's rotary scaling (rope_type llama3) over the reference llama: with head size 16 and base 10000 the
        // eight frequencies have wavelengths 6.3, 19.9, 62.8, 199, … positions, so against a 64-position pre-training
        // context (low 1, high 4: boundaries at 16 and 64) one is kept, two are blended and five divided by the factor.
        "llama3" => Config("llama") with
        {
            RopeTheta = 10000.0,
            RopeScaling = new RopeScaling { Type = "llama3", Factor = 4.0, LowFreqFactor = 1.0, HighFreqFactor = 4.0, OriginalMaxPositions = 64 },
        },
        // GQA 6:2 with head size 8, tied embeddings.
        "mistral" => new ModelConfig
        {
            ModelType = "mistral", VocabSize = 335, HiddenSize = 48, IntermediateSize = 80,
            NumLayers = 2, NumHeads = 6, NumKvHeads = 2, MaxPositions = 128, RopeTheta = 1_000_000.0, NormEps = 1e-6,
            TieWordEmbeddings = true, BosTokenId = 1, EosTokenId = 2,
        },
        // q/k/v biases, GQA 4:2, untied head (Qwen2's own default), byte-level vocabulary with Qwen2's regex.
        "qwen2" => new ModelConfig
        {
            ModelType = "qwen2", VocabSize = 320, HiddenSize = 64, IntermediateSize = 112,
            NumLayers = 2, NumHeads = 4, NumKvHeads = 2, MaxPositions = 128, RopeTheta = 1_000_000.0, NormEps = 1e-6,
            TieWordEmbeddings = false, AttentionBias = true, BosTokenId = null, EosTokenId = 317, PadTokenId = 317,
        },
        // Qwen3: per-head q/k RMSNorms, an explicit head_dim (24) that is not hidden/heads (16), GQA 4:2, untied head, no
        // attention bias (Qwen3's default); Qwen2's byte-level vocabulary.
        "qwen3" => new ModelConfig
        {
            ModelType = "qwen3", VocabSize = 320, HiddenSize = 64, IntermediateSize = 112, HeadDim = 24, QkNorm = true,
            NumLayers = 2, NumHeads = 4, NumKvHeads = 2, MaxPositions = 128, RopeTheta = 1_000_000.0, NormEps = 1e-6,
            TieWordEmbeddings = false, BosTokenId = null, EosTokenId = 317, PadTokenId = 317,
        },
        // LayerNorm with biases, learned positions, untied head.
        "gpt2" => new ModelConfig
        {
            ModelType = "gpt2", VocabSize = 300, HiddenSize = 64, IntermediateSize = 256,
            NumLayers = 2, NumHeads = 4, NumKvHeads = 4, MaxPositions = 128, NormEps = 1e-5,
            TieWordEmbeddings = false, BosTokenId = 296, EosTokenId = 296,
        },
        // Phi-3: GQA 4:2, half of each head rotated, LongRoPE from a 256-token pre-training context (short factors within
        // it; attention factor √1.25), a sliding window, untied head.
        "phi3" => new ModelConfig
        {
            ModelType = "phi3", VocabSize = 340, HiddenSize = 64, IntermediateSize = 96,
            NumLayers = 2, NumHeads = 4, NumKvHeads = 2, MaxPositions = 1024, RopeTheta = 250000.0, NormEps = 1e-5,
            TieWordEmbeddings = false, BosTokenId = 1, EosTokenId = 2, PadTokenId = 2, SlidingWindow = 96,
            RopeScaling = new RopeScaling
            {
                Type = "longrope", OriginalMaxPositions = 256,
                ShortFactor = new ValueList<double>([1.0, 1.25, 1.5, 2.0]), LongFactor = new ValueList<double>([1.5, 2.0, 3.0, 4.0]),
            },
            Extras = new Models.Families.Phi3.Phi3Settings(PartialRotaryFactor: 0.5, OriginalMaxPositions: 256),
        },
        // GPT-NeoX / Pythia: a quarter of each head rotated (base 20000), LayerNorms and attention with biases, exact
        // GELU, parallel residual (or sequential), untied embed_out; GPT-2's byte-level vocabulary.
        "gpt_neox" or "gpt_neox-sequential" => new ModelConfig
        {
            ModelType = "gpt_neox", VocabSize = 300, HiddenSize = 64, IntermediateSize = 256,
            NumLayers = 2, NumHeads = 4, NumKvHeads = 4, MaxPositions = 128, RopeTheta = 20000.0, NormEps = 1e-5,
            TieWordEmbeddings = false, AttentionBias = true, AttentionOutputBias = true, BosTokenId = 296, EosTokenId = 296,
            Extras = new Models.Families.GptNeoX.GptNeoXSettings(RotaryPct: 0.25, UseParallelResidual: name == "gpt_neox", HiddenAct: "gelu"),
        },
        _ => throw new PargsException($"no reference checkpoint named \"{name}\" (known: {string.Join(", ", Names.Concat(Shapes.Keys))})"),
    };

    /// <summary>
    /// Real model shapes with the same seeded weights and tiny tokenizers (the vocabulary padded to the shape's
    /// size), for speed and memory measurements against llama.cpp: family and config.
    /// </summary>
    public static readonly IReadOnlyDictionary<string, (string Family, Func<ModelConfig> Config)> Shapes =
        new Dictionary<string, (string, Func<ModelConfig>)>(StringComparer.Ordinal)
        {
            // llama2.c's stories110M (the shape of docs/benchmarks.md).
            ["llama-110m"] = ("llama", () => Config("llama") with
            {
                VocabSize = 32000, HiddenSize = 768, IntermediateSize = 2048, NumLayers = 12, NumHeads = 12, NumKvHeads = 12,
                MaxPositions = 1024, RopeTheta = 10000.0, TieWordEmbeddings = true,
            }),
            // The reference llama widened to whole 256-value super-blocks, so every K-quant applies (convert --type q4_k).
            ["llama-256"] = ("llama", () => Config("llama") with { HiddenSize = 256, IntermediateSize = 512 }),
            ["qwen2.5-0.5b"] = ("qwen2", () => Config("qwen2") with
            {
                VocabSize = 151936, HiddenSize = 896, IntermediateSize = 4864, NumLayers = 24, NumHeads = 14, NumKvHeads = 2,
                MaxPositions = 32768, TieWordEmbeddings = true,
            }),
            ["llama3.2-1b"] = ("llama", () => Config("llama") with
            {
                VocabSize = 128256, HiddenSize = 2048, IntermediateSize = 8192, NumLayers = 16, NumHeads = 32, NumKvHeads = 8,
                MaxPositions = 131072, RopeTheta = 500000.0, TieWordEmbeddings = true,
            }),
            // Qwen2.5-0.5B's widths as a llama with Llama 3's 128,256-token vocabulary: a 0.5B reward model that shares the
            // 1B/8B shapes' tokenizer (candidates scored as siblings, no retokenizing) for PARGS measurements.
            ["llama-0.5b"] = ("llama", () => Config("llama") with
            {
                VocabSize = 128256, HiddenSize = 896, IntermediateSize = 4864, NumLayers = 24, NumHeads = 14, NumKvHeads = 2,
                MaxPositions = 131072, RopeTheta = 500000.0, TieWordEmbeddings = true,
            }),
            // Llama-3.1-8B's shape (its llama3 rope_scaling left out: the shape is what memory and speed depend on).
            ["llama3.1-8b"] = ("llama", () => Config("llama") with
            {
                VocabSize = 128256, HiddenSize = 4096, IntermediateSize = 14336, NumLayers = 32, NumHeads = 32, NumKvHeads = 8,
                MaxPositions = 131072, RopeTheta = 500000.0, TieWordEmbeddings = false,
            }),
        };

    /// <summary>
    /// Writes the checkpoint <paramref name="name"/> (a family of <see cref="Names"/>, or a shape of
    /// <see cref="Shapes"/>) as a Hugging Face folder at <paramref name="dir"/>; with <paramref name="rewardModel"/>, as
    /// the family's …ForSequenceClassification (a seeded score head [1, hidden] instead of lm_head).
    /// </summary>
    public static void Write(string name, string dir, bool rewardModel = false)
    {
        if (Models.Families.Gemma.GemmaReferenceCheckpoints.Names.Contains(name))
        {
            if (rewardModel) throw new PargsException($"reference checkpoint \"{name}\" has no reward-model form");
            Models.Families.Gemma.GemmaReferenceCheckpoints.Write(name, dir);
            return;
        }
        var (config, family, architecture, seed) = Resolve(name, rewardModel);
        var tensors = new Dictionary<string, torch.Tensor>(StringComparer.Ordinal);
        try
        {
            var random = new SplitMix64(seed);
            foreach (var (tensorName, shape) in GenerationOrder(ExpectedTensors.For(config, architecture)))
            {
                var values = new float[Elements(shape)];
                unsafe
                {
                    fixed (float* p = values) Fill(p, values.Length, tensorName, Concrete(shape), config, random);
                }
                tensors[tensorName] = torch.tensor(values, Concrete(shape));
            }
            var extra = family == "mistral" ? new Dictionary<string, JsonNode?> { ["sliding_window"] = null } : null;
            if (rewardModel) (extra ??= new())["num_labels"] = 1;
            HuggingFaceFolder.Save(dir, config, architecture, tensors, extraConfig: extra);
        }
        finally
        {
            foreach (var t in tensors.Values) t.Dispose();
        }
        WriteTokenizerFiles(family, config, dir);
    }

    /// <summary>
    /// Writes the checkpoint <paramref name="name"/> straight to a GGUF of <paramref name="type"/> at <paramref name="path"/>,
    /// one tensor at a time: the same seeded weights as <see cref="Write"/> (SplitMix64 is counter-based, so each tensor's
    /// values start at their own offset of the one stream) without ever holding the float32 model — an 8B shape would
    /// need 32 GB. A llama / mistral / qwen2 family only (the stored-precision families); reward models as
    /// <see cref="GgufConverter"/> writes them (head as <c>cls.output.weight</c>).
    /// </summary>
    public static GgufConversionSummary WriteGguf(string name, string path, GgufOutputType type, bool rewardModel = false)
    {
        var (config, family, architecture, seed) = Resolve(name, rewardModel);
        if (!StoredCheckpoint.HasStoredKernel(config))
            throw new PargsException($"reference checkpoint \"{name}\" ({config.ModelType}) is written as a folder only; convert it with pargs convert");
        var order = GenerationOrder(ExpectedTensors.For(config, architecture)).Select(t => (t.Name, Shape: Concrete(t.Shape))).ToList();
        var offsets = new Dictionary<string, long>(StringComparer.Ordinal);
        long offset = 0;
        foreach (var (tensorName, shape) in order) { offsets[tensorName] = offset; offset += Elements(shape); }
        var shapes = order.ToDictionary(t => t.Name, t => t.Shape, StringComparer.Ordinal);
        unsafe torch.Tensor Make(string tensorName)
        {
            var shape = shapes[tensorName];
            var t = torch.empty(shape, dtype: torch.ScalarType.Float32);
            // Value i of the stream is the (i+1)-th draw from the seed: start the generator offset draws further.
            var random = new SplitMix64(seed + (ulong)offsets[tensorName] * SplitMix64.Gamma);
            Fill(StoredTensorReader.DataPointer(t), Elements(shape), tensorName, shape, config, random);
            return t;
        }
        // Config and tokenizer files in a scratch folder beside the output: the vocabulary is built from them as convert does.
        string scratch = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path))!, $".{Path.GetFileName(path)}.vocab-{Guid.NewGuid():N}");
        Directory.CreateDirectory(scratch);
        try
        {
            var extra = new Dictionary<string, JsonNode?>();
            if (family == "mistral") extra["sliding_window"] = null;
            if (rewardModel) extra["num_labels"] = 1;
            File.WriteAllText(Path.Combine(scratch, HuggingFaceFolder.ConfigFile), config.ToHuggingFaceJson(architecture, extra).ToJsonString());
            WriteTokenizerFiles(family, config, scratch);
            using var contents = new CheckpointContents
            {
                Config = config, Tensors = new(StringComparer.Ordinal), Source = scratch, Format = "hf-folder", Architecture = architecture,
            };
            var vocabulary = GgufVocabulary.ForCheckpoint(contents);
            var writer = GgufConverter.Build(contents, vocabulary, type, name + (rewardModel ? "-rm" : ""), streamed: new GgufConverter.StreamedTensors(order, Make));
            writer.Save(path);
            return new GgufConversionSummary(GgufConverter.Families[config.ModelType].Architecture, writer.TensorCount, new FileInfo(path).Length, []);
        }
        finally
        {
            Directory.Delete(scratch, recursive: true);
        }
    }

    /// <summary>The config, family, architecture and seed of a reference checkpoint or shape.</summary>
    static (ModelConfig Config, string Family, string Architecture, ulong Seed) Resolve(string name, bool rewardModel)
    {
        ModelConfig config;
        if (Shapes.TryGetValue(name, out var realShape))
        {
            config = realShape.Config();
            name = realShape.Family;
        }
        else config = Config(name);
        string architecture = rewardModel ? config.Family.SequenceClassificationArchitecture(config)
            : config.ModelType is "phi3" or "gpt_neox" ? config.Family.CausalLMArchitecture(config)
            : config.ModelType == "gpt2" ? "GPT2LMHeadModel"
            : name switch { "mistral" => "MistralForCausalLM", "qwen2" => "Qwen2ForCausalLM", "qwen3" => "Qwen3ForCausalLM", _ => "LlamaForCausalLM" };
        return (config, name, architecture, (ulong)(Names.ToList().IndexOf(name) + 1) * 0x9E3779B97F4A7C15UL);
    }

    /// <summary>A declared shape with "any size" (-1: a score head's labels) as 1.</summary>
    static long[] Concrete(long[] shape) => shape.Select(d => d < 0 ? 1 : d).ToArray();

    static long Elements(long[] shape) => Concrete(shape).Aggregate(1L, (a, b) => a * b);

    /// <summary>The seeded values of one tensor, drawn from <paramref name="random"/> in order.</summary>
    static unsafe void Fill(float* values, long count, string tensorName, long[] shape, ModelConfig config, SplitMix64 random)
    {
        bool gain = tensorName.EndsWith("norm.weight", StringComparison.Ordinal) || tensorName.Contains(".ln_", StringComparison.Ordinal) && tensorName.EndsWith(".weight", StringComparison.Ordinal);
        bool vector = shape.Length == 1;
        // Matrices scaled by 1/sqrt(fan-in) keep activations near unit size through the layers;
        // embeddings and the head stay larger so the next-token distribution is far from uniform.
        double scale = gain ? 0.2 : vector ? 0.2 : tensorName.Contains("embed") || tensorName.Contains("wte") || tensorName.Contains("wpe") ? 1.0
            : tensorName.Contains("lm_head") ? 3.0 / Math.Sqrt(shape[^1]) : 1.7 / Math.Sqrt(shape[^1]);
        // GPT-2 Conv1D stores [in, out]: the fan-in is the first dimension.
        bool conv1d = config.ModelType == "gpt2" && shape.Length == 2 && !tensorName.Contains("wte") && !tensorName.Contains("wpe") && !tensorName.Contains("lm_head");
        for (long i = 0; i < count; i++)
        {
            float v = (float)((gain ? 1.0 : 0.0) + scale * random.NextSymmetric());
            values[i] = conv1d ? (float)(v * Math.Sqrt(shape[1]) / Math.Sqrt(shape[0])) : v;
        }
    }

    /// <summary>tokenizer.json (a small BPE trained here) and tokenizer_config.json of the family's reference checkpoint.</summary>
    static void WriteTokenizerFiles(string family, ModelConfig config, string dir)
    {
        bool byteLevel = config.ModelType is "gpt2" or "gpt_neox" || family is "qwen2" or "qwen3";
        // Qwen3 ships Qwen2's tokenizer.
        var tokenizer = byteLevel ? ByteLevelTokenizerJson(family == "qwen3" ? "qwen2" : family) : SentencePieceTokenizerJson();
        File.WriteAllText(Path.Combine(dir, HuggingFaceFolder.TokenizerFile), tokenizer.ToJsonString());
        var tokenizerConfig = new JsonObject { ["add_bos_token"] = !byteLevel, ["add_eos_token"] = false };
        File.WriteAllText(Path.Combine(dir, "tokenizer_config.json"), tokenizerConfig.ToJsonString());
    }

    /// <summary>Token ids to evaluate: BOS (when the family has one) then a fixed text, tokenized by the checkpoint's own tokenizer.</summary>
    public const string PromptText = "Once upon a time the girl waved at the little boat.";

    /// <summary>
    /// The order the values are drawn in, which defines the weights: each layer's o_proj.weight before its q/k/v
    /// biases, as the tensor list was ordered when the committed llama.cpp goldens were made (the family
    /// declaration now lists the biases beside their matrices). Reordering would give other weights and void the goldens.
    /// </summary>
    static List<(string Name, long[] Shape)> GenerationOrder(IEnumerable<(string Name, long[] Shape)> tensors)
    {
        var list = tensors.ToList();
        for (int i = 0; i < list.Count; i++)
        {
            if (!list[i].Name.EndsWith("self_attn.o_proj.weight", StringComparison.Ordinal)) continue;
            string layer = list[i].Name[..^"self_attn.o_proj.weight".Length];
            int firstBias = list.FindIndex(t => t.Name == layer + "self_attn.q_proj.bias");
            if (firstBias < 0 || firstBias > i) continue;
            var o = list[i];
            list.RemoveAt(i);
            list.Insert(firstBias, o);
        }
        return list;
    }

    const string Qwen2Pattern = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    static JsonObject ByteLevelTokenizerJson(string name)
    {
        string pattern = name == "qwen2" ? Qwen2Pattern : Pargs.Tokenizers.ByteLevelPreTokenizer.Gpt2Pattern;
        var words = Regex.Matches(Corpus, pattern).Select(m => ByteLevelAlphabet.Encode(Encoding.UTF8.GetBytes(m.Value))).ToList();
        var vocab = new List<string>();
        for (int b = 0; b < 256; b++) vocab.Add(ByteLevelAlphabet.ByteToChar[b].ToString());
        int mergesWanted = name == "qwen2" ? 61 : 40;
        var merges = TrainBpe(words, vocab, mergesWanted);
        // Special-token ids are fixed in the configs above (EOS 317 for qwen2, 296 for gpt2).
        if (vocab.Count != 256 + mergesWanted) throw new InvalidOperationException($"the byte-level reference vocabulary has {vocab.Count} tokens, expected {256 + mergesWanted}");
        string[] specials = name == "qwen2" ? ["<|endoftext|>", "<|im_start|>", "<|im_end|>"] : ["<|endoftext|>"];
        var vocabJson = new JsonObject();
        for (int i = 0; i < vocab.Count; i++) vocabJson[vocab[i]] = i;
        var added = new JsonArray();
        foreach (var s in specials)
        {
            int id = vocab.Count + added.Count;
            added.Add(new JsonObject { ["id"] = id, ["content"] = s, ["single_word"] = false, ["lstrip"] = false, ["rstrip"] = false, ["normalized"] = false, ["special"] = true });
        }
        JsonNode preTokenizer = name == "qwen2"
            ? new JsonObject
            {
                ["type"] = "Sequence",
                ["pretokenizers"] = new JsonArray(
                    new JsonObject { ["type"] = "Split", ["pattern"] = new JsonObject { ["Regex"] = pattern }, ["behavior"] = "Isolated", ["invert"] = false },
                    new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = false, ["use_regex"] = false }),
            }
            : new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = true, ["use_regex"] = true };
        return new JsonObject
        {
            ["version"] = "1.0",
            ["added_tokens"] = added,
            ["normalizer"] = name == "qwen2" ? new JsonObject { ["type"] = "NFC" } : null,
            ["pre_tokenizer"] = preTokenizer,
            ["post_processor"] = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = false, ["use_regex"] = false },
            ["decoder"] = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = false, ["use_regex"] = false },
            ["model"] = new JsonObject
            {
                ["type"] = "BPE", ["dropout"] = null, ["unk_token"] = null, ["continuing_subword_prefix"] = "", ["end_of_word_suffix"] = "",
                ["fuse_unk"] = false, ["byte_fallback"] = false, ["vocab"] = vocabJson, ["merges"] = new JsonArray(merges.Select(m => (JsonNode?)m).ToArray()),
            },
        };
    }

    /// <summary>Llama-2-style: &lt;unk&gt; &lt;s&gt; &lt;/s&gt;, the 256 byte pieces, the corpus' characters, then merged pieces.</summary>
    internal static JsonObject SentencePieceTokenizerJson()
    {
        var vocab = new List<string> { "<unk>", "<s>", "</s>" };
        for (int b = 0; b < 256; b++) vocab.Add($"<0x{b:X2}>");
        string text = "▁" + Corpus.Replace(' ', '▁');
        foreach (char c in text.Distinct().Order()) vocab.Add(c.ToString());
        // Words keep their leading "▁", as SentencePiece splits on whitespace before merging.
        var words = Regex.Matches(text, "▁[^▁]*").Select(m => m.Value).ToList();
        var merges = TrainBpe(words, vocab, 48);
        if (vocab.Count != 335) throw new InvalidOperationException($"the SentencePiece reference vocabulary has {vocab.Count} tokens, expected 335");
        var vocabJson = new JsonObject();
        for (int i = 0; i < vocab.Count; i++) vocabJson[vocab[i]] = i;
        var added = new JsonArray();
        for (int i = 0; i < 3; i++)
            added.Add(new JsonObject { ["id"] = i, ["content"] = vocab[i], ["single_word"] = false, ["lstrip"] = false, ["rstrip"] = false, ["normalized"] = false, ["special"] = true });
        return new JsonObject
        {
            ["version"] = "1.0",
            ["added_tokens"] = added,
            ["normalizer"] = new JsonObject
            {
                ["type"] = "Sequence",
                ["normalizers"] = new JsonArray(
                    new JsonObject { ["type"] = "Prepend", ["prepend"] = "▁" },
                    new JsonObject { ["type"] = "Replace", ["pattern"] = new JsonObject { ["String"] = " " }, ["content"] = "▁" }),
            },
            ["pre_tokenizer"] = null,
            ["post_processor"] = new JsonObject
            {
                ["type"] = "TemplateProcessing",
                ["single"] = new JsonArray(new JsonObject { ["SpecialToken"] = new JsonObject { ["id"] = "<s>", ["type_id"] = 0 } },
                    new JsonObject { ["Sequence"] = new JsonObject { ["id"] = "A", ["type_id"] = 0 } }),
                ["special_tokens"] = new JsonObject { ["<s>"] = new JsonObject { ["id"] = "<s>", ["ids"] = new JsonArray(1), ["tokens"] = new JsonArray("<s>") } },
            },
            ["decoder"] = new JsonObject
            {
                ["type"] = "Sequence",
                ["decoders"] = new JsonArray(
                    new JsonObject { ["type"] = "Replace", ["pattern"] = new JsonObject { ["String"] = "▁" }, ["content"] = " " },
                    new JsonObject { ["type"] = "ByteFallback" },
                    new JsonObject { ["type"] = "Fuse" },
                    new JsonObject { ["type"] = "Strip", ["content"] = " ", ["start"] = 1, ["stop"] = 0 }),
            },
            ["model"] = new JsonObject
            {
                ["type"] = "BPE", ["dropout"] = null, ["unk_token"] = "<unk>", ["continuing_subword_prefix"] = null, ["end_of_word_suffix"] = null,
                ["fuse_unk"] = true, ["byte_fallback"] = true, ["vocab"] = vocabJson, ["merges"] = new JsonArray(merges.Select(m => (JsonNode?)m).ToArray()),
            },
        };
    }

    /// <summary>Plain BPE training: repeatedly merge the most frequent adjacent pair (first seen on ties); adds merged tokens to <paramref name="vocab"/>.</summary>
    static List<string> TrainBpe(List<string> words, List<string> vocab, int count)
    {
        var split = words.Select(w => w.Select(c => c.ToString()).ToList()).ToList();
        var merges = new List<string>();
        var known = new HashSet<string>(vocab, StringComparer.Ordinal);
        while (merges.Count < count)
        {
            var frequency = new Dictionary<(string, string), int>();
            var order = new List<(string, string)>();
            foreach (var w in split)
                for (int i = 0; i + 1 < w.Count; i++)
                {
                    var pair = (w[i], w[i + 1]);
                    if (!frequency.TryGetValue(pair, out int f)) order.Add(pair);
                    frequency[pair] = f + 1;
                }
            if (order.Count == 0) break;
            var best = order.OrderByDescending(p => frequency[p]).First(); // OrderBy is stable: first seen wins ties
            string merged = best.Item1 + best.Item2;
            merges.Add($"{best.Item1} {best.Item2}");
            if (known.Add(merged)) vocab.Add(merged);
            foreach (var w in split)
                for (int i = 0; i + 1 < w.Count; i++)
                    if (w[i] == best.Item1 && w[i + 1] == best.Item2)
                    {
                        w[i] = merged;
                        w.RemoveAt(i + 1);
                    }
        }
        return merges;
    }

    /// <summary>SplitMix64: a fixed, documented generator, so weights do not depend on the runtime's Random.</summary>
    internal sealed class SplitMix64(ulong state)
    {
        /// <summary>The increment of the state per draw (2⁶⁴/φ): draw i + 1 from state s is draw 1 from s + i·Gamma.</summary>
        public const ulong Gamma = 0x9E3779B97F4A7C15UL;

        public ulong Next()
        {
            ulong z = state += Gamma;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            return z ^ (z >> 31);
        }

        /// <summary>Uniform in [-√3, √3): unit variance.</summary>
        public double NextSymmetric() => ((Next() >> 11) * (1.0 / (1UL << 53)) * 2.0 - 1.0) * Math.Sqrt(3.0);
    }
}
