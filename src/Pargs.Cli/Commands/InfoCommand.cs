using System.CommandLine;
using Pargs.Checkpoints;
using Pargs.Tokenizers;
using Spectre.Console;

namespace Pargs.Cli.Commands;

/// <summary>`pargs info --model PATH`: architecture, sizes, vocabulary and tensor dtypes of a checkpoint.</summary>
public static class InfoCommand
{
    public static Command Create()
    {
        var model = ModelOptions.Model("Checkpoint to describe: a Hugging Face folder, a .gguf or a llama2.c .bin (default: the shipped stories260K)");
        var tokenizerOption = ModelOptions.Tokenizer();
        var command = new Command("info", "Describe a checkpoint: architecture, sizes, vocabulary, tensors.") { model, tokenizerOption };
        command.SetAction(CliErrors.Action(result =>
        {
            string path = result.GetValue(model) ?? ShippedData.Find(ShippedData.DefaultModel);
            using var contents = CheckpointLoader.Load(path);
            var c = contents.Config;
            var table = new Table().AddColumn("field").AddColumn("value");
            void Row(string k, object? v) => table.AddRow(Markup.Escape(k), Markup.Escape(v?.ToString() ?? "–"));
            Row("source", contents.Source);
            Row("format", contents.Format);
            Row("architecture", contents.Architecture ?? c.ModelType);
            Row("model_type", c.ModelType);
            Row("hidden_size", c.HiddenSize);
            Row("intermediate_size", c.IntermediateSize);
            Row("layers", c.NumLayers);
            Row("heads / kv heads", $"{c.NumHeads} / {c.NumKvHeads}");
            Row("head_dim", c.HeadDim);
            Row("context", c.MaxPositions);
            Row("vocab_size", c.VocabSize);
            foreach (var (field, value) in c.Family.DescribeConfig(c)) Row(field, value); // the family's other honoured fields
            Row("tied embeddings", c.TieWordEmbeddings);
            Row("bos / eos", $"{c.BosTokenId?.ToString() ?? "–"} / {(c.EosTokenIds.Count > 0 ? string.Join(", ", c.EosTokenIds) : "–")}");
            Row("pad", c.PadTokenId);
            // A tied head is the embedding matrix itself (GPT-2 folders carry it as a second handle): count it once.
            long parameters = contents.Tensors.Where(t => !(c.TieWordEmbeddings && t.Key == "lm_head.weight")).Sum(t => t.Value.numel());
            Row("parameters", $"{parameters:N0}");
            Row("tensors", $"{contents.Tensors.Count} (loaded as float32)");
            string tokenizerText;
            try
            {
                var tok = TokenizerLoader.ForCheckpoint(contents, result.GetValue(tokenizerOption));
                tokenizerText = $"{tok.GetType().Name}, {tok.VocabSize} tokens, BOS {tok.BosId?.ToString() ?? "–"}, EOS {tok.EosId?.ToString() ?? "–"}";
            }
            catch (PargsException e) when (result.GetValue(tokenizerOption) is null)
            {
                tokenizerText = "none: " + e.Message; // a checkpoint without one is worth describing; a --tokenizer asked for must load
            }
            Row("tokenizer", tokenizerText);
            AnsiConsole.Write(table);
            return 0;
        }));
        return command;
    }
}
