using System.Text;

namespace Pargs.Tests.Tokenizers;

/// <summary>Paths and a few hundred varied, seeded test strings shared by the tokenizer tests.</summary>
internal static class TokenizerTestData
{
    public static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Pargs.slnx"))) return dir.FullName;
        }
        throw new InvalidOperationException("Pargs.slnx not found above " + AppContext.BaseDirectory);
    }

    public static string Stories260K(string file) => Path.Combine(RepoRoot(), "data", "models", "stories260K", file);

    static readonly string[] Fixed =
    [
        "", " ", "  ", "a", "Once upon a time", "Once upon a time, there was a little girl named Lily.",
        "She liked to play outside in the park with her friends.", " leading space", "trailing space ",
        "double  space", "tabs\tand\nnewlines\n\n", "   \n  ", "\n", "Hello, world!", "It's John's dog; we're fine, I'll go.",
        "don't DON'T can't won't you've they'd", "1234567890 3.14159 2024-01-01 $100", "café naïve façade résumé",
        "Ünïcödé — “quotes” ‘single’ …", "日本語のテキスト", "中文字符", "Ωμέγα λόγος", "Привет, мир",
        "emoji 😀 👍🏽 🦄 🇫🇷", "😀😀😀", "👨‍👩‍👧", "a\u00A0b", "zero\u200Bwidth", "mixed 123abc ABC123 a1b2c3",
        "!!!???...,,,", "((([[[{{{}}}]]])))", "email@example.com http://x.y/z?q=1", "     many     spaces     ",
        "Tom said, \"Let's go!\" and they went.", "The end.\n\nThe beginning.",
    ];

    static readonly string[] Fragments =
    [
        "Once", "upon", "a", "time", "there", "was", "little", "girl", "named", "Lily", "Tim", "dog", "sun", "happy",
        "sad", "play", "park", "ball", "tree", "big", "red", "the", "and", "They", "She", "He", "said", "went",
        ",", ".", "!", "?", ";", ":", "'s", "'re", "'ll", "n't", "\"", "-", "—", "(", ")",
        "é", "ü", "ñ", "ß", "日本", "中", "Ω", "λ", "Ж", "😀", "🦄", "👍🏽", "❤️", "🎉",
        "0", "7", "42", "123", "2024", "3.5",
        " ", "  ", "   ", "\t", "\n", "\n\n", " \n ",
    ];

    /// <summary>The fixed strings plus <paramref name="randomCount"/> seeded random mixes of the fragments.</summary>
    public static IEnumerable<string> VariedStrings(int randomCount = 300, int seed = 1234)
    {
        foreach (var s in Fixed) yield return s;
        var random = new Random(seed);
        for (int i = 0; i < randomCount; i++)
        {
            var sb = new StringBuilder();
            int parts = random.Next(1, 25);
            for (int p = 0; p < parts; p++)
            {
                sb.Append(Fragments[random.Next(Fragments.Length)]);
                if (random.NextDouble() < 0.6) sb.Append(' ');
            }
            yield return sb.ToString();
        }
    }
}
