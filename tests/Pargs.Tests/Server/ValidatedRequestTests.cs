using Pargs.Models;
using Pargs.Server;
using Pargs.Tokenizers;

namespace Pargs.Tests.Server;

/// <summary>
/// A request is resolved once: <see cref="IGenerationBackend.Validate"/> hands its resolution (models, options, prompt
/// ids) to <see cref="IGenerationBackend.GenerateAsync"/>, so a text prompt is tokenized once per request (it was twice:
/// once to check it, once to run it), and a request validated by another backend is refused.
/// </summary>
public sealed class ValidatedRequestTests
{
    /// <summary>Counts the encodes of each text, and otherwise is the tokenizer it wraps.</summary>
    sealed class CountingTokenizer(ITokenizer inner) : ITokenizer
    {
        public readonly Dictionary<string, int> Encodes = new();
        public int VocabSize => inner.VocabSize;
        public int? BosId => inner.BosId;
        public int? EosId => inner.EosId;
        public int[] Encode(string text, bool addBos = false)
        {
            lock (Encodes) Encodes[text] = Encodes.GetValueOrDefault(text) + 1;
            return inner.Encode(text, addBos);
        }
        public string Decode(IEnumerable<int> ids, bool skipSpecial = true) => inner.Decode(ids, skipSpecial);
        public byte[] TokenBytes(int id) => inner.TokenBytes(id);
        public bool IsSpecial(int id) => inner.IsSpecial(id);
        public void SaveTokenizerJson(string path) => inner.SaveTokenizerJson(path);
    }

    [Fact]
    public async Task A_text_prompt_is_tokenized_once_and_generates_what_it_was_validated_as()
    {
        var lm = CausalLM.Load(TestPaths.Stories260KGguf);
        var counting = new CountingTokenizer(lm.Tokenizer!);
        lm.Tokenizer = counting;
        using var models = new ServedModels().AddLanguageModel("lm", lm);
        using var backend = new BatchingGenerationBackend(models);
        const string prompt = "Once upon a time there was a little dog";
        var validated = backend.Validate(new GenerationRequest { Model = "lm", Prompt = prompt, Method = "greedy", MaxTokens = 4 });
        Assert.Equal(lm.Tokenizer.Encode(prompt, addBos: true).Length, validated.PromptTokens);
        counting.Encodes.Clear();

        string text = "";
        string? finish = null;
        await foreach (var update in backend.GenerateAsync(validated, default))
        {
            text += update.TextDelta;
            finish ??= update.FinishReason;
        }
        Assert.False(counting.Encodes.ContainsKey(prompt), "the prompt was tokenized again to run it");
        Assert.Equal("length", finish);
        Assert.NotEmpty(text);

        using var other = new BatchingGenerationBackend(models);
        Assert.Throws<ArgumentException>(() => other.GenerateAsync(new ValidatedRequest(validated.Request, validated.PromptTokens), default).GetAsyncEnumerator().MoveNextAsync().AsTask().GetAwaiter().GetResult());
    }
}
