namespace Pargs.Checkpoints;

/// <summary>
/// Which ggml type each tensor of a quantized GGUF gets, by llama.cpp's rules (llama-quant.cpp,
/// llama_tensor_get_type for the Q8_0 and Q4_0 file types), so a file Pargs writes is the file llama-quantize
/// would write from the same weights:
/// <list type="bullet">
/// <item>vectors (norms, biases) stay F32 (only tensors of two or more dimensions are quantized);</item>
/// <item>the output head — or the token embedding when the head is tied to it — is Q8_0 in a Q8_0 file and Q6_K
/// otherwise, Q8_0 when its rows are not a whole number of 256-element super-blocks;</item>
/// <item>every other matrix (the token embedding of an untied model included) is the file's type; rows that are not a
/// whole number of 32-element blocks have no fallback in llama.cpp for these types, so they are refused.</item>
/// </list>
/// The writer rounds with the same reference quantizers as ggml (<see cref="Weights.WeightCodec"/>).
/// </summary>
public static class GgufQuantization
{
    /// <summary>The ggml type of the matrix <paramref name="ggufName"/> [rows, cols] in a <paramref name="fileType"/> file.</summary>
    public static GgmlType TypeOf(string ggufName, long[] shape, GgufOutputType fileType, bool tiedEmbeddings, string source)
    {
        var type = fileType switch
        {
            GgufOutputType.Q8_0 => GgmlType.Q8_0,
            GgufOutputType.Q4_0 => GgmlType.Q4_0,
            _ => throw new ArgumentOutOfRangeException(nameof(fileType), fileType, "not a quantized file type"),
        };
        if (shape.Length < 2) return GgmlType.F32;
        long cols = shape[^1];
        if (ggufName == "output.weight" || (tiedEmbeddings && ggufName == "token_embd.weight"))
            return type == GgmlType.Q8_0 || cols % Weights.WeightFormats.SuperBlock != 0 ? GgmlType.Q8_0 : GgmlType.Q6_K;
        if (cols % 32 != 0)
            throw new PargsException($"{source}: tensor \"{ggufName}\" has rows of {cols} values, not a whole number of 32-value blocks; llama.cpp cannot store it as {fileType.ToString().ToLowerInvariant()} (convert to f16 instead)");
        return type;
    }
}
