using System.Text.Json.Nodes;
using Pargs.Checkpoints;
using TorchSharp;

namespace Pargs.Models.Families.Gemma;

/// <summary>
/// The tiny seeded Gemma-2 and Gemma-3 checkpoints (Hugging Face format) that tools/llamacpp-reference evaluates in
/// llama.cpp, with every structural field set: GQA, head_dim different from hidden/heads, sliding windows shorter
/// than the evaluated text with local and global layers interleaved (Gemma-3: its own local rotary base), attention
/// (Gemma-2) and final logit soft-caps small enough to bite, Gemma-3's q/k norms and an untied head. Weights come
/// from <see cref="ReferenceCheckpoints.SplitMix64"/> like the other reference checkpoints; norm weights are the
/// offsets from one Gemma stores. query_pre_attn_scalar equals head_dim because that is the scale llama.cpp
/// applies (it does not read the field; <see cref="GemmaGguf"/> refuses other values).
/// </summary>
public static class GemmaReferenceCheckpoints
{
    public static readonly IReadOnlyList<string> Names = ["gemma2", "gemma3"];

    public static ModelConfig Config(string name) => name switch
    {
        // Layers S G S G (Gemma-2's even layers slide), window 6, soft-caps 5 (scores) and 10 (logits), tied head.
        "gemma2" => new ModelConfig
        {
            ModelType = GemmaFamily.Gemma2, VocabSize = 335, HiddenSize = 64, IntermediateSize = 96, NumLayers = 4,
            NumHeads = 4, NumKvHeads = 2, HeadDim = 24, MaxPositions = 128, RopeTheta = 10000.0, NormEps = 1e-6,
            SlidingWindow = 6, TieWordEmbeddings = true, BosTokenId = 1, EosTokenId = 2, PadTokenId = 0,
            Extras = new GemmaSettings
            {
                QueryPreAttnScalar = 24, AttnLogitSoftcapping = 5.0, FinalLogitSoftcapping = 10.0,
                SlidingLayers = new ValueList<bool>(GemmaSettings.DefaultSlidingLayers(4, 2)), LocalRopeTheta = 10000.0,
            },
        },
        // Layers S S G S (sliding_window_pattern 3), window 5, local rotary base 10000 beside a global 1e6, q/k norms,
        // a final soft-cap of 8, an untied head.
        "gemma3" => new ModelConfig
        {
            ModelType = GemmaFamily.Gemma3Text, VocabSize = 335, HiddenSize = 48, IntermediateSize = 80, NumLayers = 4,
            NumHeads = 6, NumKvHeads = 2, HeadDim = 16, MaxPositions = 128, RopeTheta = 1_000_000.0, NormEps = 1e-6,
            SlidingWindow = 5, TieWordEmbeddings = false, QkNorm = true, BosTokenId = 1, EosTokenId = 2, PadTokenId = 0,
            Extras = new GemmaSettings
            {
                QueryPreAttnScalar = 16, FinalLogitSoftcapping = 8.0,
                SlidingLayers = new ValueList<bool>(GemmaSettings.DefaultSlidingLayers(4, 3)), LocalRopeTheta = 10000.0,
            },
        },
        _ => throw new PargsException($"no Gemma reference checkpoint named \"{name}\" (known: {string.Join(", ", Names)})"),
    };

    /// <summary>Writes the checkpoint <paramref name="name"/> as a Hugging Face folder at <paramref name="dir"/>.</summary>
    public static void Write(string name, string dir)
    {
        var config = Config(name);
        string architecture = config.Family.CausalLMArchitecture(config);
        var random = new ReferenceCheckpoints.SplitMix64((ulong)(Names.ToList().IndexOf(name) + 101) * 0x9E3779B97F4A7C15UL);
        var tensors = new Dictionary<string, torch.Tensor>(StringComparer.Ordinal);
        try
        {
            foreach (var (tensorName, shape) in ExpectedTensors.For(config, architecture))
            {
                long n = shape.Aggregate(1L, (a, b) => a * b);
                var values = new float[n];
                // Norm weights are offsets from one (Gemma multiplies by 1 + w); matrices scaled by 1/√fan-in; an
                // untied head larger, so the next-token distribution is far from uniform and the soft-caps bite. A tied
                // head is the embedding: kept small (the model scales it by √hidden into the residual stream, where at
                // unit size it would swamp the layers and every token would predict itself), with the final norm's
                // gain raised instead to give the logits their size.
                bool tied = config.TieWordEmbeddings;
                double offset = tied && tensorName == "model.norm.weight" ? 20.0 : 0.0;
                double scale = tensorName.EndsWith("norm.weight", StringComparison.Ordinal) ? 0.2
                    : tensorName.Contains("embed_tokens") ? (tied ? 0.05 : 1.0)
                    : tensorName.Contains("lm_head") ? 4.0 / Math.Sqrt(shape[^1]) : 1.7 / Math.Sqrt(shape[^1]);
                for (long i = 0; i < n; i++) values[i] = (float)(offset + scale * random.NextSymmetric());
                tensors[tensorName] = torch.tensor(values, shape);
            }
            HuggingFaceFolder.Save(dir, config, architecture, tensors);
        }
        finally
        {
            foreach (var t in tensors.Values) t.Dispose();
        }
        File.WriteAllText(Path.Combine(dir, HuggingFaceFolder.TokenizerFile), ReferenceCheckpoints.SentencePieceTokenizerJson().ToJsonString());
        var tokenizerConfig = new JsonObject { ["add_bos_token"] = true, ["add_eos_token"] = false };
        File.WriteAllText(Path.Combine(dir, "tokenizer_config.json"), tokenizerConfig.ToJsonString());
    }
}
