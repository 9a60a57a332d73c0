using Pargs.Rewards;
using System.Globalization;
using System.Text;

namespace Pargs.Experiments;

/// <summary>
/// Writes <c>report.md</c> at the top of the work folder: how to repeat the run (command, seed, options), what each
/// stage did and how long it took, the reward models' accuracy by prefix length, the comparison table and the
/// plots (linked relative to the work folder), and what each column means.
/// </summary>
public static class DemoReport
{
    public const string FileName = "report.md";

    public static string Write(DemoOptions o, IReadOnlyList<DemoStageResult> stages, string? commandLine, double wallSeconds)
    {
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.Append("# Pargs demo: steering stories260K toward positive sentiment\n\n");
        sb.Append("Command: `").Append(commandLine ?? "pargs demo").Append("`  \n");
        sb.Append("Seed: ").Append(o.Seed).Append(" · threads: ").Append(o.Threads?.ToString(inv) ?? "default")
          .Append(" · finished: ").Append(DateTime.UtcNow.ToString("yyyy-MM-dd HH:mm 'UTC'", inv))
          .Append(" · this invocation: ").Append(wallSeconds.ToString("0.0", inv)).Append(" s")
          .Append(" · all stages (as first computed): ").Append(stages.Sum(s => s.Seconds).ToString("0.0", inv)).Append(" s\n\n");
        sb.Append("Settings: k = ").Append(o.K).Append(", w ∈ {").Append(string.Join(", ", o.Weights.Select(w => w.ToString("0.###", inv))))
          .Append("}, ").Append(o.MaxNewTokens).Append(" new tokens, ").Append(o.GenerationSeeds).Append(" decoding seed(s); pairs: ")
          .Append(o.PairsPerPrompt).Append(" per train prompt, top-").Append(o.PairTopK).Append(" samples of ").Append(o.PairMaxNewTokens)
          .Append(" tokens, Bradley–Terry labels with τ = ").Append(o.LabelTemperature.ToString("0.###", inv))
          .Append(o.DropTiedPairs ? " (tied gold rewards dropped)" : "").Append("; reward models: ")
          .Append(o.Budget.Describe(inv))
          .Append(o.Dpo ? $"; DPO: β = {o.DpoBeta.ToString("0.###", inv)}, the same pairs and budget, row \"dpo\" = top-k sampling from the DPO policy" : "")
          .Append(o.Ppo ? $"; PPO: kl_coef = {o.PpoKlCoef.ToString("0.###", inv)} against the full reward model on the train prompts, DPO's optimizer steps, row \"ppo\" = top-k sampling from the PPO policy" : "")
          .Append(".\n\n");

        sb.Append("## Stages\n\n| stage | status | seconds | summary |\n|---|---|---:|---|\n");
        foreach (var s in stages)
            sb.Append("| ").Append(s.Stage).Append(" | ").Append(s.Skipped ? "cached" : "ran").Append(" | ").Append(s.Seconds.ToString("0.0", inv))
              .Append(" | ").Append(string.Join(", ", s.Summary.Select(kv => $"{kv.Key} = {Format(kv.Value)}"))).Append(" |\n");

        string rmTable = Path.Combine(o.WorkDir, "reward-models", "prefix-accuracy.md");
        if (File.Exists(rmTable))
        {
            sb.Append("\n## Reward models: accuracy on held-out pairs by prefix length\n\n");
            sb.Append("Both start from the base LM's weights with a fresh score head and see the same pairs for the same number of steps; ")
              .Append("*full* is trained on whole responses only, *partial* on every prefix. A prefix of i tokens of the chosen response ")
              .Append("is compared with the same-length prefix of the rejected one.\n\n");
            sb.Append(File.ReadAllText(rmTable)).Append("\n![prefix accuracy](reward-models/prefix-accuracy.png)\n");
        }

        if (stages.FirstOrDefault(s => s.Stage == DemoPipeline.VocabularyRewardModelsStage) is { } vocabulary)
        {
            sb.Append("\n## Reward models with a vocabulary head (FaRMA, GenARM)\n\n")
              .Append("Causal LMs started from the base LM, head included, trained on the same pairs (budget: ")
              .Append(o.VocabularyBudget.Describe(inv)).Append("): FaRMA's objective (Bradley–Terry on whole responses alternating with the ")
              .Append("max constraint on chosen prefixes, detached target) and GenARM's (β = 0.05). Held-out whole-response accuracy: ")
              .Append(string.Join(", ", o.VocabularyObjectives.Select(v => v.ToConfigValue())
                  .Select(n => $"{n} {Format(vocabulary.Summary.GetValueOrDefault(n + "_accuracy", double.NaN))} (loss {Format(vocabulary.Summary.GetValueOrDefault(n + "_eval_loss", double.NaN))})")))
              .Append(".\n");
        }

        if (stages.FirstOrDefault(s => s.Stage == "dpo") is { } dpo)
        {
            sb.Append("\n## DPO\n\nThe policy starts from the base LM (also the frozen reference) and is trained on the same train pairs with the ")
              .Append("same steps, batch, learning rate and data-order seed as the reward models. Held-out pairs: DPO loss ")
              .Append(Format(dpo.Summary.GetValueOrDefault("eval_loss", double.NaN))).Append(", implicit-reward accuracy ")
              .Append(Format(dpo.Summary.GetValueOrDefault("eval_reward_accuracies", double.NaN))).Append(" (")
              .Append(Format(dpo.Summary.GetValueOrDefault("eval_pairs", double.NaN))).Append(" pairs, ")
              .Append(Format(dpo.Summary.GetValueOrDefault("steps", double.NaN))).Append(" steps).\n");
        }

        sb.Append("\n## Methods on held-out prompts, judged by the gold reward\n\n");
        sb.Append(File.ReadAllText(Path.Combine(o.WorkDir, "evaluate", "table.md")));
        sb.Append("\n![reward vs w](evaluate/reward-vs-w.png)\n\n![reward vs perplexity](evaluate/reward-vs-perplexity.png)\n\n");
        sb.Append("### The reward–KL frontier\n\n![frontier](evaluate/frontier.png)\n\n")
          .Append("Left: methods that draw every token from a softmax over scores (topk, pargs, farma, genarm, dpo), at KL(π ‖ p_base) ")
          .Append("estimated per sample as Σ_t log π(y_t) − log p_base(y_t) with π's log-probabilities read while decoding (the \"KL\" column; ")
          .Append("mean ± SE over samples). Right: argmax methods (args, pargs-g, farma-g) and searches over samples (best-of-n, cd, cards), ")
          .Append("which define no per-token log-probability: perplexity under the base LM instead.\n\n");
        if (stages.FirstOrDefault(s => s.Stage == "generate") is { } generate && generate.Summary.TryGetValue("cards_target_reward", out var target))
            sb.Append("CARDS: r* = ").Append(Format(target)).Append(", the ").Append((100 * o.CardsTargetQuantile).ToString("0.#", inv))
              .Append("th percentile of the partial reward model's rewards on the train pairs' responses; segments at temperature 0.7 (their code), top-").Append(o.K)
              .Append(". Blockwise CD: K = ").Append(o.K).Append(" continuations of M = ").Append(o.BlockLength).Append(" tokens per block.\n\n");
        sb.Append("""
            ### What the columns mean

            - **dpo**: top-k sampling (same k, temperature and seeds as topk) from the DPO-trained policy instead of the base LM.
            - **ppo**: the same, from the PPO-trained policy (RLHF against the full reward model).
            - **reward**: the gold reward, VADER compound sentiment of the continuation (Pargs's `LexiconSentiment`, positive
              target), in (−1, 1). It never guided any method: the reward models guided, and they only ever saw Bradley–Terry
              labels drawn from it.
            - **win/tie/loss**: per prompt (seeds averaged), gold reward against the baseline method's on the same prompt.
            - **diversity**: ARGS's diversity (product of distinct-n ratios, n = 2..4) of the continuations.
            - **coherence**: cosine between the base LM's mean-pooled last hidden states of the prompt and of the continuation
              (each encoded alone; ARGS uses SimCSE embeddings, which we do not ship).
            - **ppl**: perplexity of the continuations under the base LM, given their prompts (lower = closer to what the LM
              would write itself).
            - **KL (nats)**: KL(π ‖ p_base) per sample, mean ± SE of log π(y) − log p_base(y) over the samples, for methods
              with a per-token policy (the tokens drawn and the EOS that ended a row; p_base = the base LM's full softmax).
            - **tok/s**, **s/sample**: decoding speed on this machine (batch time shared among its rows).

            """);
        string path = Path.Combine(o.WorkDir, FileName);
        Pargs.IO.AtomicFile.WriteAllText(path, sb.ToString());
        return path;
    }

    static string Format(double x) => x == Math.Round(x) && Math.Abs(x) < 1e9
        ? x.ToString("0", CultureInfo.InvariantCulture)
        : x.ToString("0.###", CultureInfo.InvariantCulture);
}
