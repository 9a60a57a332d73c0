namespace Pargs.Tokenizers;

/// <summary>One sequence of an encoding on its way through post-processing: ids and their token type ids.</summary>
internal sealed record EncodingPart(List<int> Ids, List<int> TypeIds);

/// <summary>
/// A tokenizer.json post-processor: adds special tokens around the encoded sequence (or pair) and sets the
/// token type ids. With add_special_tokens false only the type ids are set, as in the Rust library.
/// </summary>
internal abstract class PostProcessor
{
    /// <summary><paramref name="parts"/>: one part per input sequence (A, then B); returns the parts to concatenate.</summary>
    public abstract List<EncodingPart> Process(List<EncodingPart> parts, bool addSpecialTokens);

    /// <summary>The ids this processor puts before sequence A and after it, for a single sequence.</summary>
    public virtual (IReadOnlyList<int> Before, IReadOnlyList<int> After) SingleSpecials => ([], []);

    protected static EncodingPart Specials(IEnumerable<int> ids, int typeId)
    {
        var list = ids.ToList();
        return new EncodingPart(list, Enumerable.Repeat(typeId, list.Count).ToList());
    }

    protected static EncodingPart WithType(EncodingPart part, int typeId) =>
        new(part.Ids, Enumerable.Repeat(typeId, part.Ids.Count).ToList());
}

/// <summary>ByteLevel as a post-processor only trims offsets, which Pargs does not track: ids are unchanged.</summary>
internal sealed class IdentityPostProcessor : PostProcessor
{
    public override List<EncodingPart> Process(List<EncodingPart> parts, bool addSpecialTokens) => parts;
}

internal sealed class SequencePostProcessor(IReadOnlyList<PostProcessor> processors) : PostProcessor
{
    public IReadOnlyList<PostProcessor> Items => processors;

    public override List<EncodingPart> Process(List<EncodingPart> parts, bool addSpecialTokens)
    {
        foreach (var p in processors) parts = p.Process(parts, addSpecialTokens);
        return parts;
    }

    public override (IReadOnlyList<int> Before, IReadOnlyList<int> After) SingleSpecials
    {
        get
        {
            var before = new List<int>();
            var after = new List<int>();
            foreach (var p in processors) { before.AddRange(p.SingleSpecials.Before); after.AddRange(p.SingleSpecials.After); }
            return (before, after);
        }
    }
}

/// <summary>One item of a TemplateProcessing template: sequence A or B, or a named special token, with its type id.</summary>
internal sealed record TemplatePiece(bool IsSequence, bool IsB, string? SpecialName, int TypeId);

/// <summary>TemplateProcessing: the "single" and "pair" templates, special tokens looked up in special_tokens.</summary>
internal sealed class TemplateProcessor(IReadOnlyList<TemplatePiece> single, IReadOnlyList<TemplatePiece> pair,
    IReadOnlyDictionary<string, int[]> specialTokens) : PostProcessor
{
    public IReadOnlyDictionary<string, int[]> SpecialTokens => specialTokens;

    public override List<EncodingPart> Process(List<EncodingPart> parts, bool addSpecialTokens)
    {
        var template = parts.Count > 1 ? pair : single;
        var result = new List<EncodingPart>();
        foreach (var piece in template)
        {
            if (piece.IsSequence) result.Add(WithType(parts[piece.IsB && parts.Count > 1 ? 1 : 0], piece.TypeId));
            else if (addSpecialTokens) result.Add(Specials(specialTokens[piece.SpecialName!], piece.TypeId));
        }
        return result;
    }

    public override (IReadOnlyList<int> Before, IReadOnlyList<int> After) SingleSpecials
    {
        get
        {
            var before = new List<int>();
            var after = new List<int>();
            bool seenSequence = false;
            foreach (var piece in single)
            {
                if (piece.IsSequence) { seenSequence = true; continue; }
                (seenSequence ? after : before).AddRange(specialTokens[piece.SpecialName!]);
            }
            return (before, after);
        }
    }
}

/// <summary>
/// BertProcessing ([CLS] A [SEP] / [CLS] A [SEP] B [SEP], B's type ids 1) and RobertaProcessing
/// (&lt;s&gt; A &lt;/s&gt; / &lt;s&gt; A &lt;/s&gt;&lt;/s&gt; B &lt;/s&gt;, every type id 0).
/// </summary>
internal sealed class ClsSepProcessor(int cls, int sep, bool roberta) : PostProcessor
{
    public override List<EncodingPart> Process(List<EncodingPart> parts, bool addSpecialTokens)
    {
        var result = new List<EncodingPart>();
        if (addSpecialTokens) result.Add(Specials([cls], 0));
        result.Add(WithType(parts[0], 0));
        if (addSpecialTokens) result.Add(Specials([sep], 0));
        if (parts.Count > 1)
        {
            int typeId = roberta ? 0 : 1;
            if (addSpecialTokens && roberta) result.Add(Specials([sep], 0));
            result.Add(WithType(parts[1], typeId));
            if (addSpecialTokens) result.Add(Specials([sep], typeId));
        }
        return result;
    }

    public override (IReadOnlyList<int> Before, IReadOnlyList<int> After) SingleSpecials => ([cls], [sep]);
}
