using System.Text.Json.Nodes;
using Pargs.Tokenizers;

namespace Pargs.Tests.Tokenizers;

/// <summary>
/// The Precompiled normalizer on hostile charsmaps: every malformed blob is a <see cref="PargsException"/> naming the
/// file and field (its faithful behaviour on a real charsmap is checked against the Rust library by the deberta-spm
/// golden, <see cref="HuggingFaceGoldenTests"/>).
/// </summary>
public class PrecompiledNormalizerTests
{
    static JsonObject WithCharsmap(string charsmap)
    {
        var root = JsonNode.Parse(File.ReadAllText(Path.Combine(TokenizerGoldens.Fixtures, "deberta", "tokenizer.json")))!.AsObject();
        root["normalizer"] = new JsonObject { ["type"] = "Precompiled", ["precompiled_charsmap"] = charsmap };
        return root;
    }

    static byte[] Blob(uint trieBytes, uint[] units, byte[] pool)
    {
        var blob = new List<byte>(BitConverter.GetBytes(trieBytes));
        foreach (var u in units) blob.AddRange(BitConverter.GetBytes(u));
        blob.AddRange(pool);
        return blob.ToArray();
    }

    [Theory]
    [InlineData("not base64!", "not valid base64")]
    [InlineData("AAA=", "too short")]
    [InlineData("QAAAAA==", "claims a 64-byte trie")]
    public void Malformed_charsmaps_are_refused_naming_the_field(string charsmap, string problem)
    {
        var e = Assert.Throws<PargsException>(() => TokenizerJson.FromJson(WithCharsmap(charsmap), "tok.json", null, null));
        Assert.Contains("tok.json", e.Message);
        Assert.Contains("normalizer", e.Message);
        Assert.Contains(problem, e.Message);
    }

    [Fact]
    public void Replacement_strings_must_be_utf8()
    {
        var blob = Blob(4, [0], [0xff, 0xfe, 0]);
        var e = Assert.Throws<PargsException>(() => TokenizerJson.FromJson(WithCharsmap(Convert.ToBase64String(blob)), "tok.json", null, null));
        Assert.Contains("not valid UTF-8", e.Message);
    }

    [Fact]
    public void A_hand_built_trie_rewrites_by_its_rules_and_a_value_outside_the_pool_is_refused()
    {
        // Root at 0 with base 256: the child "x" (0x78) at 256 ^ 0x78; "x" has a value: base 512, value unit at 512.
        uint Offset(int off) => (uint)off << 10;
        var units = new uint[768];
        units[0] = Offset(0 ^ 256);
        units[256 ^ 0x78] = 0x78 | (1u << 8) | Offset((256 ^ 0x78) ^ 512);
        units[512] = 0x80000000u | 0; // "x" → the pool's first string
        var pool = "yz\0"u8.ToArray();
        var tokenizer = TokenizerJson.FromJson(WithCharsmap(Convert.ToBase64String(Blob(768 * 4, units, pool))), "tok.json", null, null);
        Assert.Equal(tokenizer.Encode("yz"), tokenizer.Encode("x"));
        Assert.NotEqual(tokenizer.Encode("yz"), tokenizer.Encode("w"));

        units[512] = 0x80000000u | 40; // past the end of the pool
        var broken = TokenizerJson.FromJson(WithCharsmap(Convert.ToBase64String(Blob(768 * 4, units, pool))), "tok.json", null, null);
        Assert.Contains("precompiled_charsmap is malformed", Assert.Throws<PargsException>(() => broken.Encode("x")).Message);
    }
}
