using Pargs.Checkpoints;
using Pargs.Tests.Cli;
using Pargs.Tokenizers;

namespace Pargs.Tests.Tokenizers;

/// <summary>
/// `--tokenizer model.gguf` reads the file's embedded vocabulary (tokenizer.ggml.*) without its tensors — the local copy of
/// what a llama.cpp server serves is usually the model file itself, and loading its weights for the vocabulary cost the
/// weights. Shown with a vocabulary-only GGUF (llama.cpp ships such files for its tokenizer tests): no tensors at all.
/// </summary>
public sealed class GgufVocabularyOnlyTests
{
    /// <summary>stories260K's vocabulary as a GGUF of metadata only (no tensors).</summary>
    internal static string VocabularyOnly(TempDir dir)
    {
        var (pieces, scores, types, bos, eos) = GgufCheckpoint.ReadVocabulary(GgufFile.Read(TestPaths.Stories260KGguf));
        string path = dir.File("vocab-only.gguf");
        new GgufWriter()
            .Set("general.architecture", GgufValue.String("llama"))
            .Set("tokenizer.ggml.model", GgufValue.String("llama"))
            .Set("tokenizer.ggml.tokens", GgufValue.Strings(pieces))
            .Set("tokenizer.ggml.scores", GgufValue.Floats(scores))
            .Set("tokenizer.ggml.token_type", GgufValue.Ints(types!))
            .Set("tokenizer.ggml.bos_token_id", GgufValue.U32((uint)bos!.Value))
            .Set("tokenizer.ggml.eos_token_id", GgufValue.U32((uint)eos!.Value))
            .Save(path);
        return path;
    }

    [Fact]
    public void A_gguf_tokenizer_is_read_from_the_metadata_alone_and_tokenizes_as_the_models_own()
    {
        using var dir = new TempDir();
        string path = VocabularyOnly(dir);
        Assert.Empty(GgufFile.Read(path).Tensors);
        using var model = CheckpointLoader.Load(TestPaths.Stories260KGguf);
        var own = TokenizerLoader.ForCheckpoint(model); // the model's own, as loading it finds it
        var read = TokenizerLoader.FromFile(path);
        Assert.Equal(own.VocabSize, read.VocabSize);
        Assert.Equal(own.BosId, read.BosId);
        Assert.Equal(own.EosId, read.EosId);
        foreach (string text in new[] { "Once upon a time, a little girl named Lily", " leading space", "digits 12345", "café naïve", "tab\tand\nnewline" })
            Assert.Equal(own.Encode(text, addBos: true), read.Encode(text, addBos: true));
        Assert.Throws<PargsException>(() => CheckpointLoader.Load(path).Dispose()); // not a model: only its vocabulary can be read
    }

    [Fact]
    public void Generate_takes_a_gguf_as_tokenizer_for_a_local_model_too()
    {
        using var dir = new TempDir();
        string[] Args(params string[] extra) => ["generate", "--model", TestPaths.Stories260KGguf, "-p", "Once upon a time", "--method", "greedy", "--max-new-tokens", "8", "--threads", "1", .. extra];
        string byDefault = PargsCli.Succeeds(Args()).Stdout;
        Assert.Equal(byDefault, PargsCli.Succeeds(Args("--tokenizer", VocabularyOnly(dir))).Stdout);
    }
}
