using Pargs.Checkpoints;
using Pargs.Decoding;
using Pargs.Engine;
using Pargs.Json;
using Pargs.Models;
using Pargs.Models.Encoders;
using Pargs.Tokenizers;
using static TorchSharp.torch;

namespace Pargs.Rewards;

/// <summary>
/// An encoder classifier (BERT, RoBERTa, DistilBERT, DeBERTa-v2/v3 …ForSequenceClassification) as a reward model.
/// It reads text, not LM ids: each (prompt, response) becomes its input as <see cref="Input"/> says (one text, or a
/// pair with the post-processor's special tokens and token type ids), and the reward is the number
/// <see cref="Label"/> picks from the logits. Being bidirectional it has no KV cache: guided decoding scores the k
/// candidate texts of every row in batched full forwards (<see cref="EncoderCandidateScorer"/>).
/// </summary>
public sealed class EncoderRewardModel : IRewardModel, IDisposable
{
    /// <summary>Rows of one forward: bounds the activation memory of a batch ([rows, T, hidden] per layer).</summary>
    public const int MaxRowsPerForward = 64;

    /// <summary>Padded lengths are rounded up to a multiple of this, so texts of similar length share a forward.</summary>
    public const int LengthBucket = 16;

    public EncoderRewardModel(EncoderClassifier classifier, HuggingFaceTokenizer tokenizer, EncoderInput input, RewardLabel label, string source)
    {
        Classifier = classifier;
        EncoderTokenizer = tokenizer;
        Input = input;
        Label = label;
        Source = source;
        var c = classifier.Config;
        Config = new ModelConfig
        {
            ModelType = c.ModelType, VocabSize = c.VocabSize, HiddenSize = c.HiddenSize, IntermediateSize = c.IntermediateSize,
            NumLayers = c.NumLayers, NumHeads = c.NumHeads, NumKvHeads = c.NumHeads, HeadDim = c.HeadDim, MaxPositions = c.MaxTokens,
            PadTokenId = c.PadTokenId, NormEps = c.LayerNormEps,
        };
    }

    public EncoderClassifier Classifier { get; }
    public HuggingFaceTokenizer EncoderTokenizer { get; }
    public EncoderInput Input { get; }
    public RewardLabel Label { get; }
    public string Source { get; }

    /// <summary>
    /// The shape decoding sizes things by (vocabulary, MaxPositions = the longest input the encoder reads). The model
    /// type is an encoder's, which the causal family registry does not know: nothing asks this config for a family.
    /// </summary>
    public ModelConfig Config { get; }
    public ITokenizer? Tokenizer => EncoderTokenizer;

    /// <summary>
    /// Loads an encoder reward model folder: config.json, model.safetensors, tokenizer.json; the input setting and the
    /// reward label from config.json's <c>pargs_input</c> / <c>pargs_reward_label</c>, where
    /// <paramref name="rewardLabel"/> (--reward-label) overrides the saved label.
    /// </summary>
    public static EncoderRewardModel Load(string dir, string? rewardLabel = null, string? tokenizerPath = null)
    {
        var classifier = EncoderCheckpoint.LoadClassifier(dir);
        try
        {
            string configPath = Path.Combine(dir, HuggingFaceFolder.ConfigFile);
            var json = CheckedJson.ReadFile(configPath).Object();
            var inputField = json[EncoderInputs.ConfigField];
            var input = inputField.IsMissing ? EncoderInput.Text
                : EncoderInputs.Parse(inputField.String()) ?? throw inputField.Error($"\"{inputField.String()}\" is not known (expected \"text\" or \"pair\")");
            string? label = rewardLabel ?? json[RewardLabel.ConfigField].StringOrNull();
            var c = classifier.Config;
            var resolved = RewardLabel.Resolve(c.Labels, c.MultiLabel, label, dir);
            var tokenizer = EncoderCheckpoint.LoadTokenizer(dir, c, tokenizerPath);
            return new EncoderRewardModel(classifier, tokenizer, input, resolved, dir);
        }
        catch
        {
            classifier.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Records the input setting (and the reward label, when given) in a model folder's config.json, so decoding and
    /// evaluation read the model as it was trained.
    /// </summary>
    public static void SaveSettings(string dir, EncoderInput input, string? rewardLabel)
    {
        string path = Path.Combine(dir, HuggingFaceFolder.ConfigFile);
        var json = CheckedJson.ReadFile(path).Object().AsObject();
        json[EncoderInputs.ConfigField] = input.ToConfigValue();
        if (rewardLabel is not null) json[RewardLabel.ConfigField] = rewardLabel;
        IO.AtomicFile.WriteAllText(path, json.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }) + "\n");
    }

    /// <summary>
    /// An encoder classifier folder as <c>train-rm</c> starts from it: a one-label head (TRL's num_labels = 1; a
    /// multi-label head's last layer is re-initialised from <paramref name="seed"/>, see
    /// <see cref="EncoderCheckpoint.LoadOneLabel"/>; a pretrained BertModel / …ForMaskedLM gets a new head), read with
    /// <paramref name="input"/>, in train mode. <paramref name="note"/> says what was made new.
    /// </summary>
    public static EncoderRewardModel ForTraining(string dir, EncoderInput input, int seed, string? tokenizerPath, out string? note)
    {
        var classifier = EncoderCheckpoint.LoadOneLabel(dir, seed, out note);
        try
        {
            var json = CheckedJson.ReadFile(Path.Combine(dir, HuggingFaceFolder.ConfigFile)).Object().AsObject();
            var tokenizer = EncoderCheckpoint.LoadTokenizer(dir, classifier.Config, tokenizerPath);
            var label = RewardLabel.Resolve(classifier.Config.Labels, classifier.Config.MultiLabel, null, dir);
            return new EncoderRewardModel(classifier, tokenizer, input, label, dir) { trainingConfig = json };
        }
        catch
        {
            classifier.Dispose();
            throw;
        }
    }

    System.Text.Json.Nodes.JsonObject? trainingConfig;

    /// <summary>
    /// Writes a trained model as a folder <see cref="Load"/> (and transformers) reads: config.json (the starting folder's,
    /// with the one-label head's id2label, <c>pargs_input</c> and <c>pargs_objective</c>; a multi-label setting that no
    /// longer applies — problem_type, num_labels, pargs_reward_label — removed), model.safetensors under transformers'
    /// names, and the tokenizer files.
    /// </summary>
    public void Save(string dir, RewardObjective objective)
    {
        if (trainingConfig is null) throw new InvalidOperationException("only a model started with ForTraining is saved");
        Directory.CreateDirectory(dir);
        var json = (System.Text.Json.Nodes.JsonObject)trainingConfig.DeepClone();
        json["architectures"] = new System.Text.Json.Nodes.JsonArray(Classifier.Config.Architecture); // a pretrained BertForMaskedLM's is now a classifier
        json["id2label"] = new System.Text.Json.Nodes.JsonObject { ["0"] = Label.Name };
        json["label2id"] = new System.Text.Json.Nodes.JsonObject { [Label.Name] = 0 };
        json.Remove("num_labels");
        json.Remove("problem_type");
        json.Remove(RewardLabel.ConfigField);
        json[EncoderInputs.ConfigField] = Input.ToConfigValue();
        json[RewardModel.ObjectiveField] = objective.ToConfigValue();
        File.WriteAllText(Path.Combine(dir, HuggingFaceFolder.ConfigFile), json.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }) + "\n");
        var tensors = StateDict.Snapshot(Classifier);
        try { Safetensors.Save(Path.Combine(dir, HuggingFaceFolder.WeightsFile), tensors); }
        finally { foreach (var t in tensors.Values) t.Dispose(); }
        EncoderTokenizer.SaveTokenizerJson(Path.Combine(dir, HuggingFaceFolder.TokenizerFile));
    }

    /// <summary>The model's input for a prompt and a response: one text, or a pair.</summary>
    public TokenizerEncoding Encode(string prompt, string response)
    {
        var encoding = EncodeUnchecked(prompt, response);
        if (encoding.Ids.Length > Classifier.Config.MaxTokens)
            throw new PargsException($"{Source}: the text needs {encoding.Ids.Length} tokens but the encoder reads at most {Classifier.Config.MaxTokens} " +
                                     "(max_position_embeddings); shorten the prompt or max_new_tokens");
        return encoding;
    }

    /// <summary><see cref="Encode"/> without the length check (callers that filter or report long inputs themselves).</summary>
    public TokenizerEncoding EncodeUnchecked(string prompt, string response) => Input == EncoderInput.Pair
        ? EncoderTokenizer.Encode(prompt, response, addSpecialTokens: true)
        : EncoderTokenizer.Encode(prompt + response, null, addSpecialTokens: true);

    /// <summary>Rewards of (prompt, response) pairs, batched by length bucket.</summary>
    public float[] Score(IReadOnlyList<(string Prompt, string Response)> texts)
        => Score(texts.Select(t => Encode(t.Prompt, t.Response)).ToList());

    /// <summary>
    /// Rewards of encoded inputs: sorted by length, cut into forwards of at most <see cref="MaxRowsPerForward"/> rows
    /// whose padded length is the longest row rounded up to the <see cref="LengthBucket"/> (so k candidates that differ
    /// by a token share a forward), each row right-padded with pad_token_id and masked.
    /// </summary>
    public float[] Score(IReadOnlyList<TokenizerEncoding> inputs)
    {
        var rewards = new float[inputs.Count];
        var order = Enumerable.Range(0, inputs.Count).OrderBy(i => inputs[i].Ids.Length).ToArray();
        int at = 0;
        using var _ = no_grad();
        while (at < order.Length)
        {
            int bucket = BucketOf(inputs[order[at]].Ids.Length);
            int end = at;
            while (end < order.Length && end - at < MaxRowsPerForward && BucketOf(inputs[order[end]].Ids.Length) == bucket) end++;
            var group = order[at..end];
            int length = group.Max(i => inputs[i].Ids.Length);
            int padded = Math.Min(bucket, Classifier.Config.MaxTokens);
            padded = Math.Max(padded, length);
            var batchRewards = Forward(group.Select(i => inputs[i]).ToList(), padded);
            for (int r = 0; r < group.Length; r++) rewards[group[r]] = batchRewards[r];
            at = end;
        }
        return rewards;
    }

    static int BucketOf(int length) => (length + LengthBucket - 1) / LengthBucket * LengthBucket;

    /// <summary>One forward of <paramref name="rows"/> right-padded to <paramref name="length"/> → their rewards.</summary>
    public float[] Forward(IReadOnlyList<TokenizerEncoding> rows, int length)
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        return Label.Reward(Logits(rows, length)).to(ScalarType.Float32).data<float>().ToArray();
    }

    /// <summary>
    /// The classifier's logits [rows, labels] for <paramref name="rows"/> right-padded with pad_token_id to
    /// <paramref name="length"/>; token types pass only to a model that reads them (<see cref="EncoderConfig.ReadsTokenTypes"/>).
    /// </summary>
    public Tensor Logits(IReadOnlyList<TokenizerEncoding> rows, int length)
    {
        var c = Classifier.Config;
        var ids = new long[rows.Count * length];
        var types = new long[rows.Count * length];
        var valid = new bool[rows.Count * length];
        for (int r = 0; r < rows.Count; r++)
        {
            var row = rows[r];
            for (int t = 0; t < length; t++)
            {
                bool real = t < row.Ids.Length;
                ids[r * length + t] = real ? row.Ids[t] : c.PadTokenId;
                valid[r * length + t] = real;
                if (real && c.ReadsTokenTypes)
                {
                    int type = row.TypeIds[t];
                    if (type < 0 || type >= c.TypeVocabSize)
                        throw new PargsException($"{Source}: the tokenizer gives token type {type} but the model has {c.TypeVocabSize} (type_vocab_size); the tokenizer does not belong to the model");
                    types[r * length + t] = type;
                }
                if (real && (row.Ids[t] < 0 || row.Ids[t] >= c.VocabSize))
                    throw new PargsException($"{Source}: token id {row.Ids[t]} is outside the model's vocabulary ({c.VocabSize})");
            }
        }
        var shape = new long[] { rows.Count, length };
        using var scope = NewDisposeScope(); // the input tensors are this call's (TransformerBackbone.ForwardInScope says why)
        return scope.MoveToOuter(Classifier.Logits(tensor(ids, shape), tensor(types, shape), tensor(valid, shape)));
    }

    /// <summary>
    /// Rewards of complete encoded inputs [B, T] (special tokens included, as the tokenizer's single-sequence
    /// encoding gives them; token type 0) at their valid positions — what the server's /v1/rewards sends.
    /// </summary>
    public Tensor SequenceRewards(Tensor ids, Tensor valid)
    {
        var rows = new List<TokenizerEncoding>();
        long[] idData;
        bool[] validData;
        using (NewDisposeScope()) // the conversions are temporaries (TransformerBackbone.ForwardInScope says why)
        {
            idData = ids.to(ScalarType.Int64).data<long>().ToArray();
            validData = valid.to(ScalarType.Bool).data<bool>().ToArray();
        }
        int b = (int)ids.shape[0], t = (int)ids.shape[1];
        for (int r = 0; r < b; r++)
        {
            var row = new List<int>();
            for (int i = 0; i < t; i++) if (validData[r * t + i]) row.Add((int)idData[r * t + i]);
            rows.Add(new TokenizerEncoding(row.ToArray(), new int[row.Count]));
        }
        var rewards = Score(rows);
        using var scope = NewDisposeScope(); // made in a scope and handed out of it, as every entry point's result (TransformerBackbone.ForwardInScope)
        return scope.MoveToOuter(tensor(rewards));
    }

    /// <inheritdoc/>
    public ICandidateScorer OpenScorer(LanguageModelInfo lm, int capacity, CandidateScoringCounts counts)
        => new EncoderCandidateScorer(this, lm, counts, reference: false);

    /// <summary>The oracle: every candidate's text rebuilt from all its LM ids and scored alone, unpadded.</summary>
    public ICandidateScorer OpenReferenceScorer(LanguageModelInfo lm, CandidateScoringCounts counts)
        => new EncoderCandidateScorer(this, lm, counts, reference: true);

    /// <summary>Best-of-N: the text of each prompt and of its completion, read as <see cref="Input"/> says.</summary>
    public float[] ScoreCompletions(LanguageModelInfo lm, IReadOnlyList<int[]> prompts, IReadOnlyList<int[]> completions)
    {
        var text = TextOf(lm);
        return Score(prompts.Select((p, i) => text.Split(p, completions[i])).ToList());
    }

    /// <summary>The LM's text path (complete UTF-8 characters only; see <see cref="RewardRetokenizer"/>).</summary>
    internal LmText TextOf(LanguageModelInfo lm)
    {
        if (lm.Tokenizer is null)
            throw new PargsException($"{Source}: an encoder reward model reads text, and the LM {lm.Source} has no tokenizer to write its ids as text");
        return new LmText(new RewardRetokenizer(lm.Tokenizer, lm.StopId, EncoderTokenizer, Source, Config.MaxPositions));
    }

    public void Dispose() => Classifier.Dispose();
}

/// <summary>LM ids → (prompt text, response text) as an encoder reads them.</summary>
internal sealed class LmText(RewardRetokenizer bridge)
{
    public RewardRetokenizer Bridge { get; } = bridge;

    /// <summary>
    /// The prompt's text and the text the continuation adds after it, complete UTF-8 characters only (an unfinished
    /// character is held back until its last byte arrives, as the causal text path does).
    /// </summary>
    public (string Prompt, string Response) Split(IReadOnlyList<int> prompt, IReadOnlyList<int> continuation)
    {
        var promptBytes = Bridge.BytesOf(prompt, out bool started);
        var all = new List<byte>(promptBytes);
        foreach (var id in continuation)
        {
            all.AddRange(Bridge.BytesOf(id, started));
            started |= Bridge.Starts(id);
        }
        return Split(RewardRetokenizer.CompleteText(promptBytes.ToArray()), RewardRetokenizer.CompleteText(all.ToArray()));
    }

    public static (string Prompt, string Response) Split(string promptText, string fullText)
        => fullText.StartsWith(promptText, StringComparison.Ordinal) ? (promptText, fullText[promptText.Length..]) : (promptText, fullText);
}
