using System.Text;
using Pargs.Json;

namespace Pargs.Tests.Json;

public class CheckedJsonTests
{
    static CheckedJson Doc(string text) => CheckedJson.Parse(text, "config.json");

    static string Refused(Func<object?> read) => Assert.Throws<PargsException>(() => read()).Message;

    [Fact]
    public void Typed_fields_read_their_values()
    {
        var json = Doc("""{"model_type": "llama", "n": 64, "big": 2e3, "whole": 64.0, "eps": 1e-5, "tie": true, "eos": [2, 3], "bos": 1, "none": null, "nested": {"list": ["a", "b"]}}""");
        Assert.Equal("llama", json["model_type"].String());
        Assert.Equal(64, json["n"].Int());
        Assert.Equal(2000, json["big"].Int());
        Assert.Equal(64, json["whole"].Int());
        Assert.Equal(1e-5, json["eps"].Double());
        Assert.True(json["tie"].Bool());
        Assert.Equal([2, 3], json["eos"].IntOrIntList()!);
        Assert.Equal([1], json["bos"].IntOrIntList()!);
        Assert.Null(json["none"].IntOrIntList());
        Assert.Null(json["absent"].IntOrNull());
        Assert.Null(json["none"].StringOrNull());
        Assert.Equal(7, json["absent"].Int(7, 0, 10));
        Assert.Equal(["a", "b"], json["nested"]["list"].StringList());
        Assert.Equal("$.nested.list[1]", json["nested"]["list"][1].Path);
        Assert.False(json["absent"].Exists);
        Assert.True(json["none"].Exists);
    }

    [Fact]
    public void Wrong_types_name_the_file_the_path_and_the_type_expected()
    {
        Assert.Equal("config.json: $.model_type: expected a string, got 5", Refused(() => Doc("""{"model_type": 5}""")["model_type"].String()));
        Assert.Equal("config.json: $.tie_word_embeddings: expected true or false, got \"yes\"",
            Refused(() => Doc("""{"tie_word_embeddings": "yes"}""")["tie_word_embeddings"].Bool()));
        Assert.Equal("config.json: $.eos_token_id[0]: expected an integer, got null",
            Refused(() => Doc("""{"eos_token_id": [null]}""")["eos_token_id"].IntOrIntList()));
        Assert.Equal("config.json: $: expected an object, got []", Refused(() => Doc("[]")["model_type"]));
        Assert.Equal("config.json: $.pre_tokenizer.type: expected a string, got 5",
            Refused(() => Doc("""{"pre_tokenizer": {"type": 5}}""")["pre_tokenizer"]["type"].String()));
        Assert.Equal("config.json: $.n: expected an integer, got 1.5", Refused(() => Doc("""{"n": 1.5}""")["n"].Int()));
        Assert.Equal("config.json: $.n: expected an integer, got nothing (the field is missing)", Refused(() => Doc("{}")["n"].Int()));
    }

    [Fact]
    public void Out_of_range_numbers_are_refused_not_wrapped()
    {
        Assert.Contains("out of range", Refused(() => Doc("""{"num_hidden_layers": 2e9}""")["num_hidden_layers"].Int(1, 1024)));
        Assert.Contains("out of range", Refused(() => Doc("""{"n": 4294967312}""")["n"].Int()));
        Assert.Contains("out of range", Refused(() => Doc("""{"n": 1e300}""")["n"].Long()));
        Assert.Contains("out of range", Refused(() => Doc("""{"n": 99999999999999999999999}""")["n"].Long()));
        Assert.Contains("out of range", Refused(() => Doc("""{"t": 1e39}""")["t"].Float()));
        Assert.Contains("out of range", Refused(() => Doc("""{"t": 1e400}""")["t"].Double()));
        Assert.Contains("out of range", Refused(() => Doc("""{"t": -1e400}""")["t"].Int()));
        Assert.Contains("out of range", Refused(() => Doc("""{"t": -1}""")["t"].Double(0, 10)));
        Assert.Contains("at most 2 allowed", Refused(() => Doc("""{"a": [1, 2, 3]}""")["a"].Items(2)));
    }

    [Fact]
    public void Parser_failures_become_one_line_errors()
    {
        Assert.StartsWith("config.json: not valid JSON at line 2", Refused(() => Doc("{\n\"a\": }")));
        string deep = new string('[', 100_000) + new string(']', 100_000);
        Assert.StartsWith("config.json: not valid JSON", Refused(() => Doc(deep)));
        Assert.Contains("not valid JSON", Refused(() => Doc("""{"a": 1, "a": 2}""")));
        Assert.Equal("config.json: invalid UTF-8 at byte 2", Refused(() => CheckedJson.Parse(new byte[] { (byte)'"', (byte)'a', 0xFF, (byte)'"' }, "config.json")));
        Assert.DoesNotContain("\n", Refused(() => Doc("{\n\"a\": }")));
        Assert.Contains("larger than", Refused(() => CheckedJson.Parse(Encoding.UTF8.GetBytes("{}  "), "x", new CheckedJsonLimits(3, 64))));
    }

    [Fact]
    public void Files_are_bounded_before_reading_and_folders_are_named()
    {
        using var temp = new TempDir();
        Assert.Contains("is a folder", Refused(() => CheckedJson.ReadFile(temp.Path)));
        Assert.Contains("file not found", Refused(() => CheckedJson.ReadFile(temp.File("absent.json"))));
        string path = temp.File("config.json");
        File.WriteAllText(path, "\uFEFF{\"a\": 1}");
        Assert.Equal(1, CheckedJson.ReadFile(path)["a"].Int());
        File.WriteAllText(path, "{\"a\": \"" + new string('x', 100) + "\"}");
        Assert.Contains("larger than the 50 bytes", Refused(() => CheckedJson.ReadFile(path, new CheckedJsonLimits(50, 64))));
    }
}
