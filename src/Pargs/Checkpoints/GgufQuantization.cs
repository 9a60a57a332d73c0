namespace Pargs.Checkpoints;

/// <summary>
/// Which ggml type each tensor of a quantized GGUF gets, by llama.cpp's rules (llama-quant.cpp,
/// llama_tensor_get_type, for the Q8_0, Q4_0 and Q4_K_M file types of a dense model without an importance matrix),
/// so a file Pargs writes is the file llama-quantize would write from the same weights:
/// <list type="bullet">
/// <item>vectors (norms, biases) stay F32 (only tensors of two or more dimensions are quantized);</item>
/// <item>the output head — or the token embedding when the head is tied to it — is Q8_0 in a Q8_0 file and Q6_K
/// otherwise, Q8_0 when its rows are not a whole number of 256-element super-blocks;</item>
/// <item>Q4_K_M: attn_v and ffn_down of the layers <see cref="UseMoreBits"/> picks (the first and last eighth, and
/// every third layer between) are Q6_K, every other matrix Q4_K;</item>
/// <item>every other matrix (the token embedding of an untied model included) is the file's type. A K-quant matrix
/// whose rows are not whole super-blocks falls back as llama.cpp's does (Q6_K → Q8_0; Q4_K → Q5_0, a type Pargs
/// does not write: refused, naming the tensor); rows that are not a whole number of 32-element blocks have no
/// fallback in llama.cpp for Q8_0/Q4_0, so they are refused.</item>
/// </list>
/// The writer rounds with the same reference quantizers as ggml (<see cref="Weights.WeightCodec"/>): without an
/// importance matrix, llama-quantize calls exactly those (quantize_q4_K → quantize_row_q4_K_ref, and so on).
/// </summary>
public static class GgufQuantization
{
    /// <summary>The ggml type of the matrix <paramref name="ggufName"/> [rows, cols] in a <paramref name="fileType"/> file of <paramref name="layers"/> blocks.</summary>
    public static GgmlType TypeOf(string ggufName, long[] shape, GgufOutputType fileType, bool tiedEmbeddings, string source, int layers = 0)
    {
        var type = fileType switch
        {
            GgufOutputType.Q8_0 => GgmlType.Q8_0,
            GgufOutputType.Q4_0 => GgmlType.Q4_0,
            GgufOutputType.Q4_K_M => GgmlType.Q4_K,
            _ => throw new ArgumentOutOfRangeException(nameof(fileType), fileType, "not a quantized file type"),
        };
        if (shape.Length < 2) return GgmlType.F32;
        long cols = shape[^1];
        if (ggufName == "output.weight" || (tiedEmbeddings && ggufName == "token_embd.weight"))
            return type == GgmlType.Q8_0 || cols % Weights.WeightFormats.SuperBlock != 0 ? GgmlType.Q8_0 : GgmlType.Q6_K;
        if (fileType == GgufOutputType.Q4_K_M && BlockIndex(ggufName) is int layer
            && (ggufName.EndsWith(".attn_v.weight", StringComparison.Ordinal) || ggufName.EndsWith(".ffn_down.weight", StringComparison.Ordinal))
            && UseMoreBits(layer, layers))
            type = GgmlType.Q6_K;
        if (type is GgmlType.Q4_K or GgmlType.Q6_K && cols % Weights.WeightFormats.SuperBlock != 0)
        {
            // llama.cpp's fallback for rows that are not whole 256-value super-blocks.
            if (type == GgmlType.Q6_K && cols % 32 == 0) return GgmlType.Q8_0;
            throw new PargsException($"{source}: tensor \"{ggufName}\" has rows of {cols} values, not a whole number of 256-value super-blocks; llama.cpp would store it as {(cols % 32 == 0 ? "q5_0" : "f16")}, which pargs convert does not write (convert to q4_0 or q8_0 instead)");
        }
        if (cols % 32 != 0)
            throw new PargsException($"{source}: tensor \"{ggufName}\" has rows of {cols} values, not a whole number of 32-value blocks; llama.cpp cannot store it as {fileType.ToString().ToLowerInvariant()} (convert to f16 instead)");
        return type;
    }

    /// <summary>
    /// llama.cpp's choice of the layers whose attn_v / ffn_down get more bits in Q4_K_M: the first and last eighth of
    /// the <paramref name="layers"/>, and every third layer from the first eighth on (its use_more_bits, integer division).
    /// </summary>
    public static bool UseMoreBits(int layer, int layers)
        => layer < layers / 8 || layer >= 7 * layers / 8 || (layer - layers / 8) % 3 == 2;

    /// <summary>The block index of a "blk.N.…" tensor name, or null.</summary>
    static int? BlockIndex(string ggufName)
    {
        if (!ggufName.StartsWith("blk.", StringComparison.Ordinal)) return null;
        int end = ggufName.IndexOf('.', 4);
        return end > 4 && int.TryParse(ggufName.AsSpan(4, end - 4), out int i) ? i : null;
    }
}
