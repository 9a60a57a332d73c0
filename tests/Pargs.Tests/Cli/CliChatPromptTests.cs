using Pargs.Decoding;
using Pargs.Decoding.Methods;
using Pargs.Tests.Models;
using Pargs.Tokenizers;

namespace Pargs.Tests.Cli;

/// <summary>
/// `generate --chat`: prompts rendered with the model's own chat template, tokenized without adding special tokens
/// again (the template writes <c>bos_token</c> itself; transformers' apply_chat_template does the same), so a
/// Llama-3- or Gemma-style template gives one BOS, not two.
/// </summary>
public class CliChatPromptTests
{
    const string BosTemplate = """{"chat_template": "{{ bos_token }}{% for m in messages %}{{ m['content'] }}{% endfor %}", "bos_token": "<s>", "eos_token": "</s>"}""";

    static string LlamaFolder(TempDir dir, string? tokenizerConfig)
    {
        string folder = dir.File("lm");
        var config = TinyModels.LlamaConfig(vocab: 512);
        using (var lm = TinyModels.RandomLM(config))
            Pargs.Checkpoints.HuggingFaceFolder.Save(folder, config, lm.Architecture, lm.StateDictForSaving(),
                SentencePieceTokenizer.LoadLlama2c(TestPaths.Stories260KTokenizer));
        if (tokenizerConfig is not null) File.WriteAllText(Path.Combine(folder, "tokenizer_config.json"), tokenizerConfig);
        return folder;
    }

    [Fact]
    public void Chat_renders_the_models_template_and_refuses_a_model_without_one()
    {
        using var dir = new TempDir();
        string folder = LlamaFolder(dir, BosTemplate);
        var chat = PargsCli.Succeeds("generate", "--model", folder, "--chat", "-p", "Once upon a time", "--method", "greedy", "--max-new-tokens", "4", "--threads", "1");
        Assert.StartsWith("<s>Once upon a time", chat.Stdout);
        // --chat is --template auto that insists on a chat template.
        Assert.Equal(chat.Stdout, PargsCli.Succeeds("generate", "--model", folder, "--template", "auto", "-p", "Once upon a time", "--method", "greedy", "--max-new-tokens", "4", "--threads", "1").Stdout);
        PargsCli.Fails(["generate", "--model", folder, "--chat", "--template", "hh", "-p", "x"], "give --chat or --template, not both");
        using var baseDir = new TempDir();
        PargsCli.Fails(["generate", "--model", LlamaFolder(baseDir, null), "--chat", "-p", "x"], "has no chat template");
        PargsCli.Fails(["generate", "--chat", "-p", "x"], "--chat");
    }

    [Fact]
    public void A_chat_rendered_prompt_is_tokenized_with_one_bos()
    {
        using var dir = new TempDir();
        string folder = LlamaFolder(dir, BosTemplate);
        var tokenizer = TokenizerLoader.ForCheckpoint(Pargs.Checkpoints.CheckpointLoader.Load(folder), null);
        string rendered = Pargs.Data.PromptTemplate.FromName("auto", "--chat", folder).RenderPrompt("Once upon a time");
        var withSpecials = tokenizer.Encode(rendered, addBos: true);
        var asTransformers = tokenizer.Encode(rendered, addBos: false);
        Assert.Equal([1, 1], withSpecials[..2]); // what adding BOS to a template's output gives: two
        Assert.Equal(1, asTransformers[0]);
        Assert.NotEqual(1, asTransformers[1]);
    }

    [Fact]
    public void The_generator_encodes_prompts_as_the_options_say()
    {
        var config = TinyModels.LlamaConfig(vocab: 40);
        using var lm = TinyModels.RandomLM(config);
        var recording = new RecordingTokenizer(new TestCharTokenizer(40));
        lm.Tokenizer = recording;
        var options = new DecodingOptions { Method = new GreedyOptions(), MaxNewTokens = 2, StopAtEos = false };
        TextGenerator.Generate(lm, null, ["abc"], options with { AddSpecialTokens = false });
        Assert.Equal([false], recording.AddBosCalls);
        TextGenerator.Generate(lm, null, ["abc"], options);
        Assert.Equal([false, true], recording.AddBosCalls);
    }

    sealed class RecordingTokenizer(ITokenizer inner) : ITokenizer
    {
        public List<bool> AddBosCalls { get; } = new();
        public int VocabSize => inner.VocabSize;
        public int? BosId => inner.BosId;
        public int? EosId => inner.EosId;
        public int[] Encode(string text, bool addBos = false)
        {
            AddBosCalls.Add(addBos);
            return inner.Encode(text, addBos);
        }
        public string Decode(IEnumerable<int> ids, bool skipSpecial = true) => inner.Decode(ids, skipSpecial);
        public byte[] TokenBytes(int id) => inner.TokenBytes(id);
        public bool IsSpecial(int id) => inner.IsSpecial(id);
        public void SaveTokenizerJson(string path) => inner.SaveTokenizerJson(path);
    }
}
