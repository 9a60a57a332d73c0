using TorchSharp;
using System.Text;
using System.Text.Json.Nodes;
using Pargs.Checkpoints;
using Pargs.Tests.Checkpoints;
using Pargs.Tests.Models;

namespace Pargs.Tests.Cli;

/// <summary>
/// Bad input given to the real `pargs` executable: each must end in one clear error line on stderr that names the
/// file (or option) and the problem, a non-zero exit code, and no stack trace.
/// </summary>
public class CliBadInputTests : IDisposable
{
    readonly TempDir _dir = new();
    public void Dispose() => _dir.Dispose();

    static readonly string Gguf = PargsCli.Stories260KGguf;

    /// <summary>A tiny random Llama saved as a Hugging Face folder (no tokenizer.json).</summary>
    string TinyLmFolder(string name = "lm")
    {
        var config = TinyModels.LlamaConfig();
        using var lm = TinyModels.RandomLM(config);
        string folder = _dir.File(name);
        HuggingFaceFolder.Save(folder, config, lm.Architecture, lm.StateDictForSaving());
        return folder;
    }

    string WriteJsonl(string name, params string[] lines)
    {
        string path = _dir.File(name);
        File.WriteAllText(path, string.Join("\n", lines) + "\n");
        return path;
    }

    [Fact]
    public void Truncated_model_safetensors()
    {
        string folder = TinyLmFolder();
        string weights = Path.Combine(folder, HuggingFaceFolder.WeightsFile);
        var bytes = File.ReadAllBytes(weights);
        File.WriteAllBytes(weights, bytes[..(bytes.Length / 2)]);
        PargsCli.Fails(["info", "--model", folder], weights, "truncated");
    }

    [Fact]
    public void Safetensors_header_that_lies_about_offsets()
    {
        string folder = TinyLmFolder();
        string weights = Path.Combine(folder, HuggingFaceFolder.WeightsFile);
        // One 4×8 F32 tensor (128 bytes) claimed, 16 bytes of data present.
        var header = Encoding.UTF8.GetBytes("""{"model.embed_tokens.weight":{"dtype":"F32","shape":[4,8],"data_offsets":[0,128]}}""");
        using (var w = new BinaryWriter(File.Create(weights)))
        {
            w.Write((ulong)header.Length);
            w.Write(header);
            w.Write(new byte[16]);
        }
        PargsCli.Fails(["info", "--model", folder], weights, "model.embed_tokens.weight");
    }

    [Fact]
    public void Config_with_an_unknown_model_type()
    {
        string folder = TinyLmFolder();
        string configPath = Path.Combine(folder, HuggingFaceFolder.ConfigFile);
        var json = JsonNode.Parse(File.ReadAllText(configPath))!.AsObject();
        json["model_type"] = "mamba";
        json["architectures"] = new JsonArray("MambaForCausalLM");
        File.WriteAllText(configPath, json.ToJsonString());
        PargsCli.Fails(["info", "--model", folder], configPath, "mamba");
    }

    [Fact]
    public void Gguf_with_bad_magic()
    {
        string path = _dir.File("corrupt.gguf");
        var bytes = File.ReadAllBytes(Gguf)[..4096];
        bytes[0] = (byte)'X';
        File.WriteAllBytes(path, bytes);
        PargsCli.Fails(["info", "--model", path], path, "not a GGUF file");
    }

    [Fact]
    public void Gguf_with_an_unsupported_tensor_type()
    {
        string path = GgufTests.TinyLlamaGguf()
            .AddTensor("blk.0.ffn_up.weight", [1, 256], GgmlType.Q4_1, new byte[160]) // K-quants are read since issue 16; Q4_1 is not
            .SaveTo(_dir.File("q4_1.gguf"));
        PargsCli.Fails(["info", "--model", path], path, "Q4_1", "blk.0.ffn_up.weight");
    }

    [Fact]
    public void Hf_folder_without_tokenizer_json_cannot_generate()
    {
        string folder = TinyLmFolder();
        PargsCli.Fails(["generate", "--model", folder, "--method", "greedy", "--max-new-tokens", "3", "--threads", "1"], folder, "tokenizer");
    }

    [Fact]
    public void Prompt_plus_new_tokens_longer_than_the_context()
        => PargsCli.Fails(["generate", "--model", Gguf, "--method", "greedy", "--max-new-tokens", "600", "--threads", "1"], "600", "context of 512");

    [Fact]
    public void K_zero() => PargsCli.Fails(["generate", "--model", Gguf, "-k", "0", "--threads", "1"], "-k", "at least 1");

    [Fact]
    public void K_larger_than_the_vocabulary() => PargsCli.Fails(["generate", "--model", Gguf, "-k", "100000", "--threads", "1"], "100000", "vocabulary");

    [Fact]
    public void Pargs_without_a_reward_model()
        => PargsCli.Fails(["generate", "--model", Gguf, "--method", "pargs", "--threads", "1"], "--method pargs", "--reward-model");

    [Fact]
    public void Train_rm_rows_missing_fields_name_the_file_and_line()
    {
        string data = WriteJsonl("pairs.jsonl",
            """{"prompt": "Once upon a time", "chosen": " a cat sat.", "rejected": " a dog ran."}""",
            """{"prompt": "Once upon a time", "chosen": " a bird sang."}""");
        PargsCli.Fails(["train-rm", "--model", Gguf, "--data", data, "--out", _dir.File("rm"), "--max-steps", "1", "--threads", "1"],
            $"{data}:2", "rejected");
    }

    [Fact]
    public void Train_rm_on_bad_row_skip_counts_and_leaves_out_malformed_rows()
    {
        string data = WriteJsonl("mixed.jsonl",
            """{"prompt": "Once", "chosen": " a cat.", "rejected": " a dog."}""",
            """{"prompt": "Once", "chosen": " a cat."}""",
            """{"prompt": "One day", "chosen": " she smiled.", "rejected": " she cried."}""");
        var run = PargsCli.Succeeds("train-rm", "--model", Gguf, "--data", data, "--out", _dir.File("rm"), "--max-steps", "1",
            "--batch-size", "2", "--on-bad-row", "skip", "--threads", "1");
        Assert.Contains("2 pairs read (1 skipped)", run.StdoutFlat);
        PargsCli.Fails(["train-rm", "--model", Gguf, "--data", data, "--out", _dir.File("rm2"), "--on-bad-row", "maybe", "--threads", "1"],
            "--on-bad-row", "skip or fail");
    }

    [Fact]
    public void A_tokenizer_with_more_tokens_than_the_model_vocabulary()
    {
        string folder = TinyLmFolder();
        Pargs.Tokenizers.SentencePieceTokenizer.LoadLlama2c(TestPaths.Stories260KTokenizer)
            .SaveTokenizerJson(Path.Combine(folder, HuggingFaceFolder.TokenizerFile));
        PargsCli.Fails(["generate", "--model", folder, "--max-new-tokens", "2", "--threads", "1"], folder, "512 tokens", "vocab_size");
    }

    [Fact]
    public void Train_dpo_beta_zero()
    {
        string data = WriteJsonl("pairs.jsonl", """{"prompt": "Once", "chosen": " a cat.", "rejected": " a dog."}""");
        PargsCli.Fails(["train-dpo", "--model", Gguf, "--data", data, "--out", _dir.File("dpo"), "--beta", "0", "--threads", "1"], "--beta", "positive");
    }

    [Fact]
    public void Eval_rm_with_a_base_lm_folder_says_there_is_no_score_head()
    {
        string folder = TinyLmFolder();
        string data = WriteJsonl("pairs.jsonl", """{"prompt": "Once", "chosen": " a cat.", "rejected": " a dog."}""");
        PargsCli.Fails(["eval-rm", "--reward-model", folder, "--data", data, "--out", _dir.File("eval"), "--threads", "1"], folder, "no score head");
    }

    [Fact]
    public void Nonexistent_model_file()
    {
        string missing = _dir.File("nowhere.gguf");
        PargsCli.Fails(["info", "--model", missing], missing, "no such file");
        PargsCli.Fails(["generate", "--model", missing, "--threads", "1"], missing, "no such file");
    }

    [Fact]
    public void Nonexistent_data_prompts_and_reward_model_files()
    {
        string missingData = _dir.File("missing.jsonl");
        PargsCli.Fails(["train-rm", "--model", Gguf, "--data", missingData, "--out", _dir.File("rm"), "--threads", "1"], missingData, "not found");
        string missingPrompts = _dir.File("prompts.txt");
        PargsCli.Fails(["generate", "--model", Gguf, "--prompts", missingPrompts, "--threads", "1"], missingPrompts, "not found");
        string missingRm = _dir.File("no-rm");
        string data = WriteJsonl("pairs.jsonl", """{"prompt": "Once", "chosen": " a cat.", "rejected": " a dog."}""");
        PargsCli.Fails(["eval-rm", "--reward-model", missingRm, "--data", data, "--out", _dir.File("eval"), "--threads", "1"], missingRm, "reward model folder not found");
        PargsCli.Fails(["generate", "--model", Gguf, "--method", "args", "--reward-model", missingRm, "--threads", "1"], missingRm, "reward model folder not found");
    }

    [Fact]
    public void Output_paths_of_the_wrong_kind()
    {
        string file = _dir.File("a-file");
        File.WriteAllText(file, "not a folder");
        string data = WriteJsonl("pairs.jsonl", """{"prompt": "Once", "chosen": " a cat.", "rejected": " a dog."}""");
        PargsCli.Fails(["train-rm", "--model", Gguf, "--data", data, "--out", file, "--max-steps", "1", "--threads", "1"], file, "existing file");
        PargsCli.Fails(["eval-rm", "--reward-model", _dir.Path, "--data", data, "--out", file, "--threads", "1"], file, "existing file");
        PargsCli.Fails(["generate", "--model", Gguf, "--prompt", "Hi", "--max-new-tokens", "2", "--out", _dir.Path, "--threads", "1"], _dir.Path, "names a folder");
    }

    [Fact]
    public void Outputs_below_a_file_fail_before_the_work_and_missing_parent_folders_are_made()
    {
        string file = _dir.File("a-file");
        File.WriteAllText(file, "not a folder");
        string below = Path.Combine(file, "sub", "out.jsonl");
        PargsCli.Fails(["generate", "--model", Gguf, "--prompt", "Hi", "--max-new-tokens", "2", "--out", below, "--threads", "1"], file, "is not a folder");
        PargsCli.Fails(["bench", "decode", "--models", "260k", "--stories", Gguf, "--out", below], file, "is not a folder");
        PargsCli.Fails(["generate", "--model", Gguf, "--prompt", "Hi", "--out", Path.Combine(_dir.Path, "newdir") + "/", "--threads", "1"], "names a folder");
        PargsCli.Fails(["generate", "--model", Gguf, "--prompt", "Hi", "--out", "~/gen.jsonl", "--threads", "1"], "~", "shell");
        string tilde = Path.Combine(_dir.Path, "~x.jsonl"); // a name that merely starts with ~ is fine
        PargsCli.Succeeds("generate", "--model", Gguf, "--prompt", "Hi", "--max-new-tokens", "2", "--out", tilde, "--threads", "1");
        // A run that fails on its inputs leaves no output folders behind.
        string unmade = Path.Combine(_dir.Path, "a", "b", "out.jsonl");
        PargsCli.Fails(["generate", "--model", Gguf, "--prompts", _dir.File("no-such-prompts.txt"), "--out", unmade, "--threads", "1"], "not found");
        Assert.False(Directory.Exists(Path.Combine(_dir.Path, "a")));
        string gens = WriteJsonl("g.jsonl", """{"instruction": "Once", "output": " a cat.", "method": "topk"}""");
        PargsCli.Fails(["eval", "-g", gens, "--no-model", "--out", file], file, "existing file");
        PargsCli.Fails(["demo", "--quick", "--work", file], "--work", "existing file");
        string config = _dir.File("config.json");
        File.WriteAllText(config, "{}");
        PargsCli.Fails(["experiment", "--config", config, "--work", Path.Combine(file, "x")], "--work", "is not a folder");

        // A rename over a link would replace the link, not write where it points.
        string target = _dir.File("target.jsonl"), link = _dir.File("link.jsonl");
        File.WriteAllText(target, "");
        File.CreateSymbolicLink(link, target);
        PargsCli.Fails(["generate", "--model", Gguf, "--prompt", "Hi", "--max-new-tokens", "2", "--out", link, "--threads", "1"], link, "symbolic link");

        string nested = Path.Combine(_dir.Path, "new", "folders", "out.jsonl");
        PargsCli.Succeeds("generate", "--model", Gguf, "--prompt", "Hi", "--max-new-tokens", "2", "--out", nested, "--threads", "1");
        Assert.True(File.Exists(nested));
    }

    [Fact]
    public void A_value_that_does_not_parse_is_one_error_and_a_pointer_to_the_help()
    {
        var run = PargsCli.Run("generate", "--model", Gguf, "-w", "abc");
        Assert.Equal(1, run.ExitCode);
        Assert.Contains("error: Cannot parse argument 'abc' for option '-w'", run.Stderr);
        Assert.Contains("pargs generate --help", run.Stderr);
        Assert.DoesNotContain("Usage:", run.Stderr + run.Stdout); // not the whole help page
        Assert.DoesNotContain("System.", run.Stderr); // and no .NET type names
        Assert.Contains("pargs bench decode --help", PargsCli.Run("bench", "decode", "--new-tokens", "x").Stderr);
    }

    [Fact]
    public void Options_that_would_have_no_effect_are_refused()
    {
        PargsCli.Fails(["generate", "--model", Gguf, "-n", "3", "--threads", "1"], "-n", "best-of-n");
        PargsCli.Fails(["generate", "--model", Gguf, "--top-p", "0.5", "--threads", "1"], "--top-p", "topp");
        PargsCli.Fails(["generate", "--model", Gguf, "-w", "2", "--method", "topk", "--threads", "1"], "-w", "pargs");
        PargsCli.Fails(["generate", "--model", Gguf, "-k", "5", "--method", "greedy", "--threads", "1"], "-k", "greedy");
        PargsCli.Fails(["generate", "--model", Gguf, "--temperature", "0.7", "--method", "args", "-r", TestPaths.ShippedPartialRm, "--threads", "1"], "--temperature", "does not sample");
        string data = WriteJsonl("pairs.jsonl", """{"prompt": "Once", "chosen": " a cat.", "rejected": " a dog."}""");
        PargsCli.Fails(["train-rm", "--model", Gguf, "--data", data, "--out", _dir.File("rm"), "--eval-every", "2", "--threads", "1"], "--eval-every", "--eval-data");
        PargsCli.Fails(["train-dpo", "-m", Gguf, "-d", data, "-o", _dir.File("dpo"), "--lora-alpha", "8", "--threads", "1"], "--lora-alpha", "--lora-rank");
    }

    [Fact]
    public void More_threads_than_cpus_and_bad_bench_settings()
    {
        // Capped with a note (a default of 2 must run on a 1-CPU container), except where a benchmark row would be mislabelled.
        string many = (Environment.ProcessorCount + 1).ToString();
        var capped = PargsCli.Succeeds("generate", "--model", Gguf, "--prompt", "Hi", "--max-new-tokens", "2", "--threads", many);
        Assert.Contains($"--threads {many}: using {Environment.ProcessorCount}", capped.Stderr);
        PargsCli.Fails(["bench", "decode", "--models", "260k", "--stories", Gguf, "--threads", many], $"--threads {many}", "logical CPUs");
        PargsCli.Fails(["bench", "decode", "--models", "260k", "--stories", Gguf, "-k", "0"], "-k", "at least 1");
        PargsCli.Fails(["bench", "decode", "--models", "260k", "--stories", Gguf, "--methods", "farma", "--rounds", "0"], "--rounds", "at least 1");
        PargsCli.Fails(["bench", "decode", "--models", "260k", "--stories", Gguf, "-k", "1000"], "-k 1000", "vocabulary");
        PargsCli.Fails(["bench", "generate", "--stories", Gguf, "--batch", "0"], "--batch", "at least 1");
        PargsCli.Fails(["bench", "decode", "--stories", Gguf, "--models", "260k", "foo"], "--models", "\"foo\""); // before 260k runs
        PargsCli.Fails(["bench", "train-rm", "--stories", Gguf, "--lengths", "10000"], "--lengths 10000", "context");
    }

    [Fact]
    public void Training_that_diverges_stops_with_an_error_instead_of_saving_a_nan_model()
    {
        string data = WriteJsonl("pairs.jsonl", """{"prompt": "Once", "chosen": " a happy cat.", "rejected": " a sad dog."}""",
            """{"prompt": "Then", "chosen": " they smiled.", "rejected": " they cried."}""");
        string output = _dir.File("rm");
        PargsCli.Fails(["train-rm", "--model", Gguf, "--data", data, "--out", output, "--max-steps", "20", "--lr", "1e10", "--threads", "1"],
            "diverged", "learning rate");
        Assert.False(File.Exists(Path.Combine(output, "model", "config.json")) || File.Exists(Path.Combine(output, "config.json")));
        PargsCli.Fails(["train-rm", "--model", Gguf, "--data", data, "--out", output, "--weight-decay", "NaN", "--threads", "1"], "weight decay");
    }

    [Fact]
    public void Resuming_dpo_with_other_lora_settings_is_one_clear_error()
    {
        string data = WriteJsonl("pairs.jsonl", """{"prompt": "Once", "chosen": " a happy cat.", "rejected": " a sad dog."}""",
            """{"prompt": "Then", "chosen": " they smiled.", "rejected": " they cried."}""");
        string output = _dir.File("dpo");
        PargsCli.Succeeds("train-dpo", "-m", Gguf, "-d", data, "-o", output, "--max-steps", "2", "--checkpoint-every", "1",
            "--eval-fraction", "0", "--lora-rank", "4", "--threads", "1");
        PargsCli.Fails(["train-dpo", "-m", Gguf, "-d", data, "-o", output, "--max-steps", "3", "--eval-fraction", "0", "--resume", "--threads", "1"],
            "optimizer state", "--lora-rank");
    }

    [Fact]
    public void A_broken_reward_model_and_a_missing_tokenizer_are_errors_not_quiet_results()
    {
        string data = WriteJsonl("pairs.jsonl", """{"prompt": "Once", "chosen": " a happy cat.", "rejected": " a sad dog."}""");
        string rm = _dir.File("nan-rm");
        using (var model = Pargs.Rewards.RewardModel.Load(TestPaths.ShippedPartialRm))
        {
            using var notANumber = float.NaN.ToScalar(); // held: see Pargs.Models.HeldScalars
            using (TorchSharp.torch.no_grad()) model.ScoreWeight.fill_(notANumber);
            model.Save(rm);
        }
        PargsCli.Fails(["eval-rm", "-r", rm, "--data", data, "-o", _dir.File("eval"), "--threads", "1"], rm, "non-finite rewards");
        PargsCli.Fails(["generate", "--model", Gguf, "--method", "best-of-n", "-n", "2", "-r", rm, "--prompt", "Once", "--max-new-tokens", "3", "--threads", "1"],
            "Best-of-N", "NaN");
        string missing = Path.Combine(_dir.Path, "nowhere", "tokenizer.json");
        PargsCli.Fails(["info", "--model", Gguf, "--tokenizer", missing], missing, "not found");
        string gens = WriteJsonl("g.jsonl", """{"instruction": "Once", "output": " a cat.", "method": "pargs"}""");
        PargsCli.Fails(["eval", "-g", gens, "--no-model", "-o", _dir.File("ev")], "--baseline topk", "--baseline none");
        PargsCli.Fails(["eval", "-g", gens, gens, "--no-model", "--baseline", "none", "-o", _dir.File("ev")], gens, "given twice");
    }

    [Fact]
    public void Resuming_a_reward_model_with_the_other_objective_is_refused()
    {
        string data = WriteJsonl("pairs.jsonl", """{"prompt": "Once", "chosen": " a happy cat.", "rejected": " a sad dog."}""",
            """{"prompt": "Then", "chosen": " they smiled.", "rejected": " they cried."}""");
        string output = _dir.File("rm");
        PargsCli.Succeeds("train-rm", "--model", Gguf, "--data", data, "--out", output, "--objective", "partial", "--max-steps", "2",
            "--checkpoint-every", "1", "--threads", "1");
        PargsCli.Fails(["train-rm", "--model", Gguf, "--data", data, "--out", output, "--objective", "full", "--max-steps", "3", "--resume", "--threads", "1"],
            "--objective partial", "same objective");
    }

    [Fact]
    public void Eval_rm_batch_size_zero_and_empty_stop_string()
    {
        string data = WriteJsonl("pairs.jsonl", """{"prompt": "Once", "chosen": " a cat.", "rejected": " a dog."}""");
        PargsCli.Fails(["eval-rm", "--reward-model", _dir.Path, "--data", data, "--out", _dir.File("eval"), "--batch-size", "0", "--threads", "1"], "--batch-size", "at least 1");
        PargsCli.Fails(["generate", "--model", Gguf, "--stop", "", "--threads", "1"], "--stop", "non-empty");
    }

    [Fact]
    public void Generate_with_a_missing_tokenizer_a_bad_prompts_line_or_zero_threads()
    {
        string tokenizer = _dir.File("tokenizer.json");
        PargsCli.Fails(["generate", "--model", Gguf, "--tokenizer", tokenizer, "--threads", "1"], tokenizer, "not found");
        string prompts = WriteJsonl("prompts.jsonl", """{"prompt": "Once upon a time"}""", """{"text": "no prompt field"}""");
        PargsCli.Fails(["generate", "--model", Gguf, "--prompts", prompts, "--threads", "1"], $"{prompts}:2", "\"prompt\"");
        PargsCli.Fails(["generate", "--model", Gguf, "--threads", "0"], "--threads", "at least 1");
    }
}
