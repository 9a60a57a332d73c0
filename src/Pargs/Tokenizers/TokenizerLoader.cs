using Pargs.Checkpoints;

namespace Pargs.Tokenizers;

/// <summary>
/// Finds the tokenizer that belongs to a checkpoint: the vocabulary embedded in a GGUF file, tokenizer.json
/// in a Hugging Face folder, or for llama2.c the tokenizer .bin beside the model (tokenizer.bin, or
/// tok{vocab}.bin as llama2.c names its custom vocabularies). An explicit path wins over all of these.
/// </summary>
public static class TokenizerLoader
{
    public static ITokenizer ForCheckpoint(CheckpointContents contents, string? explicitPath = null)
    {
        var tokenizer = Find(contents, explicitPath);
        // Ids past the embedding table would index out of range deep inside a forward; say it here instead.
        if (tokenizer.VocabSize > contents.Config.VocabSize)
            throw new PargsException($"{explicitPath ?? contents.Source}: the tokenizer has {tokenizer.VocabSize} tokens but the model {contents.Source} only {contents.Config.VocabSize} (vocab_size); they do not belong together");
        return tokenizer;
    }

    static ITokenizer Find(CheckpointContents contents, string? explicitPath)
    {
        if (explicitPath is not null) return FromFile(explicitPath, contents);
        switch (contents.Format)
        {
            case "gguf":
                return FromGguf(GgufFile.Read(contents.Source), contents.Config.BosTokenId, contents.Config.EosTokenId);
            case "hf-folder":
            {
                string path = Path.Combine(contents.Source, HuggingFaceFolder.TokenizerFile);
                if (!File.Exists(path))
                    throw new PargsException($"{contents.Source}: no {HuggingFaceFolder.TokenizerFile} in the model folder (Pargs needs the fast-tokenizer file; pass --tokenizer to use another)");
                return TokenizerJson.Load(path, contents.Config.BosTokenId, contents.Config.EosTokenId);
            }
            case "llama2c":
            {
                string dir = Path.GetDirectoryName(Path.GetFullPath(contents.Source))!;
                var candidates = new[] { Path.Combine(dir, "tokenizer.bin"), Path.Combine(dir, $"tok{contents.Config.VocabSize}.bin") };
                string? found = candidates.FirstOrDefault(File.Exists);
                if (found is null)
                    throw new PargsException($"{contents.Source}: no llama2.c tokenizer beside the model (looked for {string.Join(" and ", candidates.Select(Path.GetFileName))}); pass --tokenizer");
                return FromFile(found, contents);
            }
            default:
                throw new PargsException($"{contents.Source}: no tokenizer known for format {contents.Format}; pass --tokenizer");
        }
    }

    static ITokenizer FromFile(string path, CheckpointContents contents) => FromFile(path, contents.Config.BosTokenId, contents.Config.EosTokenId);

    /// <summary>
    /// A tokenizer file: a tokenizer.json, a GGUF's embedded vocabulary (its tokenizer.ggml.* metadata, read without its
    /// tensors: a tokenizer taken from a model file — `--tokenizer model.gguf`, the local copy of what a llama.cpp server
    /// serves — costs the metadata, not the weights), else a llama2.c tokenizer .bin. <paramref name="bos"/> and
    /// <paramref name="eos"/> stand in where the file names none.
    /// </summary>
    public static ITokenizer FromFile(string path, int? bos = null, int? eos = null)
    {
        if (!File.Exists(path)) throw new PargsException($"{path}: tokenizer file not found");
        if (path.EndsWith(".json", StringComparison.OrdinalIgnoreCase)) return TokenizerJson.Load(path, bos, eos);
        if (path.EndsWith(".gguf", StringComparison.OrdinalIgnoreCase)) return FromGguf(GgufFile.Read(path), bos, eos);
        return SentencePieceTokenizer.LoadLlama2c(path);
    }

    static ITokenizer FromGguf(GgufFile gguf, int? bos, int? eos)
    {
        if (gguf.GetString("tokenizer.ggml.model") == "gpt2")
            return TokenizerJson.FromOwnedJson(GgufVocabulary.ToTokenizerJson(gguf), $"{gguf.Path} (tokenizer.ggml.*)",
                gguf.GetInt32("tokenizer.ggml.bos_token_id", 0, int.MaxValue) ?? bos, gguf.GetInt32("tokenizer.ggml.eos_token_id", 0, int.MaxValue) ?? eos);
        var (pieces, scores, types, vocabBos, vocabEos) = GgufCheckpoint.ReadVocabulary(gguf); // reads the same two ids
        return SentencePieceTokenizer.FromVocabulary(pieces, scores, types, vocabBos ?? bos, vocabEos ?? eos);
    }
}
