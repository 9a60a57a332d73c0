using Pargs.Models;
using TorchSharp;

namespace Pargs.Checkpoints;

/// <summary>
/// Karpathy's llama2.c legacy checkpoint (<c>run.c</c> <c>memory_map_weights</c>): seven int32 header
/// fields (dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len; a negative vocab_size
/// means a separate classifier follows), then float32 tables stacked over layers: token_embedding, rms_att,
/// wq, wk, wv, wo, rms_ffn, w1 (gate), w2 (down), w3 (up), rms_final, the freq_cis real/imag tables
/// (skipped: Pargs computes rotary itself) and the classifier when untied. Matrices are nn.Linear
/// [out, in]; q/k are in Meta's rotary layout and converted to Hugging Face's.
/// </summary>
public static class Llama2cCheckpoint
{
    const int HeaderBytes = 7 * 4;
    /// <summary>"ak42": llama2.c's newer versioned export, a different layout.</summary>
    const int VersionedMagic = 0x616b3432;

    public static CheckpointContents Load(string path)
    {
        if (!File.Exists(path)) throw new PargsException($"{path}: file not found");
        using var file = File.OpenHandle(path, FileMode.Open, FileAccess.Read);
        long length = RandomAccess.GetLength(file);
        if (length < HeaderBytes)
            throw new PargsException($"{path}: {length} bytes is too short for a llama2.c checkpoint (the header alone is {HeaderBytes})");
        var header = new byte[HeaderBytes];
        StoredTensorReader.ReadExactly(file, header, 0, path, "the header");
        int Field(int i) => BitConverter.ToInt32(header, i * 4);
        if (Field(0) == VersionedMagic)
            throw new PargsException($"{path}: llama2.c versioned export (magic \"ak42\") is not supported; export with --version 0 (legacy) or use the GGUF/HF formats");
        int dim = Field(0), hidden = Field(1), layers = Field(2), heads = Field(3), kvHeads = Field(4), vocabField = Field(5), seqLen = Field(6);
        bool shared = vocabField > 0;
        int vocab = vocabField == int.MinValue ? int.MinValue : Math.Abs(vocabField); // |int.MinValue| overflows; refused below
        foreach (var (name, value) in new[] { ("dim", dim), ("hidden_dim", hidden), ("n_layers", layers), ("n_heads", heads), ("n_kv_heads", kvHeads), ("vocab_size", vocab), ("seq_len", seqLen) })
            if (value <= 0 || value > 1 << 24)
                throw new PargsException($"{path}: header field {name} = {value} is implausible; not a llama2.c checkpoint?");

        var config = new ModelConfig
        {
            ModelType = "llama",
            VocabSize = vocab,
            HiddenSize = dim,
            IntermediateSize = hidden,
            NumLayers = layers,
            NumHeads = heads,
            NumKvHeads = kvHeads,
            MaxPositions = seqLen,
            RopeTheta = 10000.0,
            NormEps = 1e-5,
            TieWordEmbeddings = shared,
            BosTokenId = 1,
            EosTokenId = 2,
        }.Validate(path);

        long headSize = dim / heads, kvDim = (long)kvHeads * headSize, L = layers;
        // Each table: name, per-layer shape (or whole shape when not stacked), stacked over layers?
        var tables = new List<(string Table, long[] Shape, bool PerLayer)>
        {
            ("token_embedding", [vocab, dim], false),
            ("rms_att", [dim], true),
            ("wq", [heads * headSize, dim], true),
            ("wk", [kvDim, dim], true),
            ("wv", [kvDim, dim], true),
            ("wo", [dim, heads * headSize], true),
            ("rms_ffn", [dim], true),
            ("w1", [hidden, dim], true),
            ("w2", [dim, hidden], true),
            ("w3", [hidden, dim], true),
            ("rms_final", [dim], false),
            ("freq_cis", [seqLen, headSize], false), // real and imaginary halves, seq_len × head_size/2 each
        };
        if (!shared) tables.Add(("wcls", [vocab, dim], false));
        // Each field is at most 2^24, so a product of three can exceed long range: sum with checks.
        long expectedBytes;
        try { expectedBytes = checked(HeaderBytes + 4 * tables.Sum(t => StoredTensorReader.ElementCount(t.Shape) * (t.PerLayer ? L : 1))); }
        catch (OverflowException)
        {
            throw new PargsException($"{path}: the header (dim {dim}, hidden {hidden}, {layers} layers, vocab {vocabField}, seq_len {seqLen}) implies more bytes than any file holds; not a llama2.c checkpoint?");
        }
        if (length != expectedBytes)
            throw new PargsException($"{path}: {length} bytes, but the header (dim {dim}, hidden {hidden}, {layers} layers, {heads} heads, {kvHeads} kv heads, vocab {vocabField}, seq_len {seqLen}) implies {expectedBytes}; {(length < expectedBytes ? "truncated" : "trailing data or wrong header")}");

        var tensors = new Dictionary<string, torch.Tensor>(StringComparer.Ordinal);
        try
        {
            long offset = HeaderBytes;
            foreach (var (table, shape, perLayer) in tables)
            {
                long bytes = 4 * StoredTensorReader.ElementCount(shape);
                for (int layer = 0; layer < (perLayer ? layers : 1); layer++)
                {
                    string? name = HuggingFaceName(table, layer);
                    if (name != null)
                    {
                        var t = StoredTensorReader.Read(file, path, $"{table} (layer {layer})", offset, shape, StoredType.F32);
                        if (table is "wq" or "wk")
                        {
                            using var meta = t;
                            t = MetaRotaryLayout.ToHuggingFace(meta, table == "wq" ? heads : kvHeads);
                        }
                        tensors[name] = t;
                    }
                    offset += bytes;
                }
            }
        }
        catch
        {
            foreach (var t in tensors.Values) t.Dispose();
            throw;
        }
        return CheckpointLoader.Complete(config, "LlamaForCausalLM", tensors, path, "llama2c");
    }

    static string? HuggingFaceName(string table, int layer) => table switch
    {
        "token_embedding" => "model.embed_tokens.weight",
        "rms_att" => $"model.layers.{layer}.input_layernorm.weight",
        "wq" => $"model.layers.{layer}.self_attn.q_proj.weight",
        "wk" => $"model.layers.{layer}.self_attn.k_proj.weight",
        "wv" => $"model.layers.{layer}.self_attn.v_proj.weight",
        "wo" => $"model.layers.{layer}.self_attn.o_proj.weight",
        "rms_ffn" => $"model.layers.{layer}.post_attention_layernorm.weight",
        "w1" => $"model.layers.{layer}.mlp.gate_proj.weight",
        "w2" => $"model.layers.{layer}.mlp.down_proj.weight",
        "w3" => $"model.layers.{layer}.mlp.up_proj.weight",
        "rms_final" => "model.norm.weight",
        "wcls" => "lm_head.weight",
        _ => null, // freq_cis: Pargs computes rotary angles itself
    };
}
