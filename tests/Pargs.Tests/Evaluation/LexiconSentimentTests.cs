using Pargs.Rewards.Gold;

namespace Pargs.Tests.Evaluation;

// Expected values are computed by hand from the shipped lexicon entries:
// good 1.9, great 3.1, bad -2.5, love 3.2, ":)" 2.0, no -1.2, ok 1.6 then 1.2 (duplicate line; last wins).
// compound(s) = s / sqrt(s^2 + 15).
public class LexiconSentimentTests
{
    private static readonly Lazy<VaderLexicon> Lexicon = new(VaderLexicon.LoadDefault);
    private static LexiconSentiment Positive => LexiconSentiment.Positive(Lexicon.Value);

    [Fact]
    public void LoadsTheShippedLexiconWithItsValences()
    {
        var lexicon = Lexicon.Value;
        Assert.True(lexicon.Count > 7400);
        Assert.True(lexicon.TryGetValence("good", out var good));
        Assert.Equal(1.9, good);
        Assert.True(lexicon.TryGetValence("ok", out var ok));
        Assert.Equal(1.2, ok);   // the file's second "ok" line wins, as in VADER's dict
    }

    [Theory]
    [InlineData("The movie was good.", 0.440434)]            // s = 1.9
    [InlineData("good and great :)", 0.875)]                 // s = 1.9 + 3.1 + 2.0 = 7 → 7/8
    [InlineData("The movie was not good", -0.341238)]        // s = 1.9 · -0.74 = -1.406
    [InlineData("I don't love it", -0.521639)]               // s = 3.2 · -0.74 = -2.368
    [InlineData("I don\u2019t love it", -0.521639)]          // curly apostrophe is the same negator
    [InlineData("very good", 0.492725)]                      // s = 1.9 + 0.293
    [InlineData("very bad", -0.584919)]                      // s = -2.5 - 0.293
    [InlineData("not very good", -0.386456)]                 // (1.9 + 0.293) · -0.74 = -1.62282
    [InlineData("no good", -0.341238)]                       // "no" → 0, good negated: -1.406
    [InlineData("no", -0.295958)]                            // "no" alone keeps its valence -1.2
    [InlineData("The food was good, but the day was bad", -0.585882)] // 0.5·1.9 + 1.5·(-2.5) = -2.8
    [InlineData("Café était GOOD 😊!", 0.440434)]             // only "good" is rated; case folded
    [InlineData("the cat sat on the mat", 0.0)]
    [InlineData("", 0.0)]
    public void CompoundMatchesHandComputedValues(string text, double expected)
    {
        Assert.Equal(expected, Positive.Compound(text), 1e-5);
    }

    [Fact]
    public void NegationFlipsTheSign()
    {
        Assert.True(Positive.Compound("this is great") > 0);
        Assert.True(Positive.Compound("this is not great") < 0);
        Assert.True(Positive.Compound("this is never bad") > 0);
        // Only the 3 preceding tokens are looked at.
        Assert.True(Positive.Compound("not one two three great") > 0);
    }

    [Fact]
    public void TokenizerKeepsApostrophesAndEmoticons()
    {
        Assert.Equal(new[] { "don't", "stop", ":)", "well-being", "ok" },
            Positive.Tokenize("Don't STOP! :) (well-being) ok,"));
    }

    [Fact]
    public void NegativeTargetScoresMinusCompoundAndIgnoresThePrompt()
    {
        var negative = LexiconSentiment.Negative(Lexicon.Value);
        Assert.Equal("vader-negative", negative.Name);
        Assert.Equal("vader-positive", Positive.Name);
        Assert.Equal(-0.875, negative.Score("terrible awful prompt", "good and great :)"), 6);
        Assert.Equal(0.875, Positive.Score("terrible awful prompt", "good and great :)"), 6);
    }

    [Fact]
    public void MalformedLexiconLineNamesFileAndLine()
    {
        var path = Path.Combine(Path.GetTempPath(), $"pargs-lexicon-{Guid.NewGuid():N}.txt");
        File.WriteAllText(path, "good\t1.9\t0.3\t[2, 2]\nbad\tterrible\t0.5\t[-2]\n");
        try
        {
            var e = Assert.Throws<PargsException>(() => VaderLexicon.Load(path));
            Assert.Contains(path + ":2", e.Message);
            Assert.Contains("mean valence", e.Message);

            File.WriteAllText(path, "good\t1.9\n");
            e = Assert.Throws<PargsException>(() => VaderLexicon.Load(path));
            Assert.Contains(path + ":1", e.Message);
        }
        finally { File.Delete(path); }
    }
}
