using Pargs.Evaluation;

namespace Pargs.Decoding;

/// <summary>Generation results as the JSONL records users and `pargs eval` read (AlpacaEval-shaped + ours).</summary>
public static class GenerationResultRecords
{
    public static GenerationRecord ToRecord(this GenerationResult result, DecodingOptions options, string generator)
    {
        var m = options.Method;
        return new GenerationRecord
        {
            Instruction = result.Prompt,
            Output = result.Output,
            Generator = generator,
            PromptId = result.PromptIndex.ToString(System.Globalization.CultureInfo.InvariantCulture),
            Method = m.Method.Name + (options.Engine == DecodingEngine.Naive ? "-naive" : ""),
            K = m.RecordK,
            W = m.RecordW,
            Seed = options.Seed,
            Reward = null, // filled by evaluation with a held-out reward, never the guide's own
            Tokens = result.TokenIds.Length,
            Seconds = result.Seconds,
        };
    }
}
