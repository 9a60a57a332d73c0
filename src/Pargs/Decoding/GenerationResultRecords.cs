using Pargs.Evaluation;

namespace Pargs.Decoding;

/// <summary>Generation results as the JSONL records users and `pargs eval` read (AlpacaEval-shaped + ours).</summary>
public static class GenerationResultRecords
{
    public static GenerationRecord ToRecord(this GenerationResult result, DecodingOptions options, string generator)
    {
        var m = options.Method;
        bool usesK = m is DecodingMethod.TopK or DecodingMethod.BestOfN || m.IsTokenwiseGuided();
        return new GenerationRecord
        {
            Instruction = result.Prompt,
            Output = result.Output,
            Generator = generator,
            PromptId = result.PromptIndex.ToString(System.Globalization.CultureInfo.InvariantCulture),
            Method = m.Name() + (options.Naive ? "-naive" : ""),
            K = usesK ? options.K : null,
            W = m.IsTokenwiseGuided() ? options.W : null,
            Seed = options.Seed,
            Reward = null, // filled by evaluation with a held-out reward, never the guide's own
            Tokens = result.TokenIds.Length,
            Seconds = result.Seconds,
        };
    }
}
