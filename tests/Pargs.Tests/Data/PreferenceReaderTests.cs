using Pargs.Data;

namespace Pargs.Tests.Data;

public class PreferenceReaderTests : IDisposable
{
    readonly DataTestFiles _files = new();
    public void Dispose() => _files.Dispose();

    static PreferenceReadResult Read(string path, PreferenceReadOptions? options = null) => PreferenceReader.Read(path, options);

    [Fact]
    public void Explicit_format_keeps_strings_and_margin_and_renders_prompt_with_template()
    {
        string path = _files.Jsonl("explicit.jsonl",
            """{"prompt":"The sky is","chosen":" blue.","rejected":" green.","margin":1.5}""",
            """{"prompt":"Two plus two is","chosen":" four.","rejected":" five."}""");

        var (pairs, report) = Read(path);
        Assert.Equal(PreferenceFormat.Explicit, report.Format);
        Assert.Equal(new PreferencePair("The sky is", " blue.", " green.", 1.5, 1), pairs[0]);
        Assert.Equal(new PreferencePair("Two plus two is", " four.", " five.", null, 2), pairs[1]);

        var hh = Read(path, new PreferenceReadOptions { Template = PromptTemplate.Hh }).Pairs[0];
        Assert.Equal("\n\nHuman: The sky is\n\nAssistant:", hh.Prompt);
    }

    [Fact]
    public void Implicit_prompt_splits_at_the_last_assistant_turn()
    {
        string path = _files.Jsonl("implicit.jsonl",
            """{"chosen":"\n\nHuman: Hi\n\nAssistant: Hello.\n\nHuman: Joke?\n\nAssistant: Sure, here is one.","rejected":"\n\nHuman: Hi\n\nAssistant: Hello.\n\nHuman: Joke?\n\nAssistant: No."}""");
        var (pairs, report) = Read(path);
        Assert.Equal(PreferenceFormat.ImplicitPrompt, report.Format);
        Assert.Equal("\n\nHuman: Hi\n\nAssistant: Hello.\n\nHuman: Joke?\n\nAssistant:", pairs[0].Prompt);
        Assert.Equal(" Sure, here is one.", pairs[0].Chosen);
        Assert.Equal(" No.", pairs[0].Rejected);
    }

    [Fact]
    public void Conversational_format_is_rendered_by_the_template()
    {
        string path = _files.Jsonl("conv.jsonl",
            """{"prompt":[{"role":"system","content":"Be kind."},{"role":"user","content":"Hi"}],"chosen":[{"role":"assistant","content":"Hello!"}],"rejected":[{"role":"assistant","content":"Go away."}]}""");
        var (pairs, report) = Read(path, new PreferenceReadOptions { Template = PromptTemplate.ChatMl });
        Assert.Equal(PreferenceFormat.Conversational, report.Format);
        Assert.Equal("<|im_start|>system\nBe kind.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n", pairs[0].Prompt);
        Assert.Equal("Hello!<|im_end|>\n", pairs[0].Chosen);
        Assert.Equal("Go away.<|im_end|>\n", pairs[0].Rejected);

        var hh = Read(path, new PreferenceReadOptions { Template = PromptTemplate.Hh }).Pairs[0];
        Assert.Equal("Be kind.\n\nHuman: Hi\n\nAssistant:", hh.Prompt);
        Assert.Equal(" Hello!", hh.Chosen);
    }

    [Fact]
    public void Implicit_conversational_prompt_is_the_shared_leading_messages()
    {
        string path = _files.Jsonl("implicit-conv.jsonl",
            """{"chosen":[{"role":"user","content":"Q1"},{"role":"assistant","content":"A1"},{"role":"user","content":"Q2"},{"role":"assistant","content":"good"}],"rejected":[{"role":"user","content":"Q1"},{"role":"assistant","content":"A1"},{"role":"user","content":"Q2"},{"role":"assistant","content":"bad"}]}""");
        var (pairs, report) = Read(path, new PreferenceReadOptions { Template = PromptTemplate.Hh });
        Assert.Equal(PreferenceFormat.ImplicitConversational, report.Format);
        Assert.Equal("\n\nHuman: Q1\n\nAssistant: A1\n\nHuman: Q2\n\nAssistant:", pairs[0].Prompt);
        Assert.Equal(" good", pairs[0].Chosen);
        Assert.Equal(" bad", pairs[0].Rejected);
        // Same as the HH text form of the same dialogue: the template and the implicit split agree.
        Assert.Equal(PromptTemplate.Hh.RenderPrompt("Q2"), pairs[0].Prompt[^PromptTemplate.Hh.RenderPrompt("Q2").Length..]);
    }

    [Fact]
    public void TlDr_comparison_uses_post_title_subreddit_and_choice()
    {
        string path = _files.Gzip("tldr.jsonl.gz",
            """{"info":{"id":"t3_x","post":"I lost my keys again today.","title":"Keys","subreddit":"tifu"},"summaries":[{"text":" lost keys, sad","policy":"a"},{"text":" I went outside","policy":"b"}],"choice":0}""",
            """{"info":{"post":"Long post."},"summaries":[{"text":"first"},{"text":"second"}],"choice":1}""");
        var (pairs, report) = Read(path);
        Assert.Equal(PreferenceFormat.TlDr, report.Format);
        Assert.Equal("SUBREDDIT: r/tifu\n\nTITLE: Keys\n\nPOST: I lost my keys again today.\n\nTL;DR:", pairs[0].Prompt);
        Assert.Equal(" lost keys, sad", pairs[0].Chosen);
        Assert.Equal(" I went outside", pairs[0].Rejected);
        Assert.Equal("POST: Long post.\n\nTL;DR:", pairs[1].Prompt);
        Assert.Equal(" second", pairs[1].Chosen);
        Assert.Equal(" first", pairs[1].Rejected);
    }

    [Fact]
    public void Gzip_is_detected_by_magic_bytes_not_extension()
    {
        string gz = _files.Gzip("misnamed.jsonl", """{"prompt":"a","chosen":"b","rejected":"c"}""");
        Assert.Equal("b", Read(gz).Pairs[0].Chosen);

        string plain = _files.Jsonl("plain.jsonl.gz", """{"prompt":"a","chosen":"b","rejected":"c"}""");
        var error = Assert.Throws<PargsException>(() => Read(plain));
        Assert.Contains("plain.jsonl.gz", error.Message);
        Assert.Contains("gzip", error.Message);
    }

    [Fact]
    public void Forced_format_overrides_detection()
    {
        string path = _files.Jsonl("forced.jsonl", """{"prompt":"x","chosen":"y","rejected":"z"}""");
        var error = Assert.Throws<PargsException>(() => Read(path, new PreferenceReadOptions { Format = PreferenceFormat.Conversational }));
        Assert.Contains("forced.jsonl:1:", error.Message);
        Assert.Contains("'prompt'", error.Message);
    }

    public static TheoryData<string, string, BadRowReason, string> BadRows => new()
    {
        { "not json", "{\"prompt\":\"a\",\"chosen\":", BadRowReason.InvalidJson, "invalid JSON" },
        { "missing rejected", """{"prompt":"a","chosen":"b"}""", BadRowReason.MissingField, "'rejected' is missing" },
        { "number for string", """{"prompt":"a","chosen":"b","rejected":7}""", BadRowReason.WrongType, "'rejected' is a number (expected a string)" },
        { "empty chosen", """{"prompt":"a","chosen":"  ","rejected":"c"}""", BadRowReason.EmptyResponse, "'chosen'" },
        { "empty rejected", """{"prompt":"a","chosen":"b","rejected":""}""", BadRowReason.EmptyResponse, "'rejected'" },
        { "identical", """{"prompt":"a","chosen":"same","rejected":"same"}""", BadRowReason.IdenticalResponses, "identical" },
        { "margin string", """{"prompt":"a","chosen":"b","rejected":"c","margin":"big"}""", BadRowReason.WrongType, "'margin' is a string (expected a number)" },
        { "array row", """[1,2]""", BadRowReason.WrongType, "expected a JSON object" },
    };

    [Theory]
    [MemberData(nameof(BadRows))]
    public void Bad_row_fails_naming_file_line_and_field_or_is_skipped_and_counted(string name, string badRow, BadRowReason reason, string expected)
    {
        string path = _files.Jsonl($"bad-{name.Replace(' ', '-')}.jsonl",
            """{"prompt":"ok","chosen":"yes","rejected":"no"}""", badRow, """{"prompt":"ok2","chosen":"yes","rejected":"no"}""");

        var error = Assert.Throws<PargsException>(() => Read(path));
        Assert.Contains($"bad-{name.Replace(' ', '-')}.jsonl:2:", error.Message);
        Assert.Contains(expected, error.Message);

        var (pairs, report) = Read(path, new PreferenceReadOptions { OnBadRow = BadRowPolicy.Skip });
        Assert.Equal(3, report.RowsRead);
        Assert.Equal(2, report.RowsKept);
        Assert.Equal([1, 3], pairs.Select(p => p.SourceLine));
        var skipped = Assert.Single(report.Skipped);
        Assert.Equal((2, reason), (skipped.Line, skipped.Reason));
        Assert.Equal(1, report.SkippedByReason[reason]);
    }

    [Theory]
    [InlineData("""{"chosen":"\n\nHuman: a\n\nAssistant: b","rejected":"\n\nHuman: X\n\nAssistant: c"}""", "'rejected' does not share the prompt")]
    [InlineData("""{"chosen":"no turns here","rejected":"other"}""", "'chosen' has no")]
    [InlineData("""{"prompt":[{"role":"user","content":"q"}],"chosen":[{"role":"robot","content":"a"}],"rejected":[{"role":"assistant","content":"b"}]}""", "'chosen[0].role' is \"robot\"")]
    [InlineData("""{"prompt":[{"role":"user","content":"q"}],"chosen":[{"role":"assistant","content":5}],"rejected":[{"role":"assistant","content":"b"}]}""", "'chosen[0].content' is a number")]
    [InlineData("""{"info":{"post":"p"},"summaries":[{"text":"a"},{"text":"b"}],"choice":2}""", "'choice' is 2 (expected 0 or 1)")]
    [InlineData("""{"info":{"title":"t"},"summaries":[{"text":"a"},{"text":"b"}],"choice":0}""", "'info.post' is missing")]
    [InlineData("""{"info":{"post":"p"},"summaries":[{"text":"a"},{"nope":"b"}],"choice":0}""", "'summaries[1].text' is missing")]
    [InlineData("""{"something":"else"}""", "unknown row format")]
    public void Format_specific_errors_name_the_field(string row, string expected)
    {
        string path = _files.Jsonl("format-error.jsonl", row);
        var error = Assert.Throws<PargsException>(() => Read(path));
        Assert.Contains("format-error.jsonl:1:", error.Message);
        Assert.Contains(expected, error.Message);
    }

    [Fact]
    public void Truncated_gzip_is_a_clear_error_not_a_silently_shorter_file()
    {
        var rows = Enumerable.Range(0, 400).Select(i => $$"""{"prompt":"p{{i}} {{new string('x', i % 50)}}","chosen":"yes {{i * 7}}","rejected":"no {{i * 13}}"}""").ToArray();
        byte[] whole = File.ReadAllBytes(_files.Gzip("whole.jsonl.gz", rows));
        Assert.Equal(400, Read(_files.Bytes("ok.jsonl.gz", whole)).Pairs.Count);

        foreach (int cut in new[] { whole.Length - 4, whole.Length / 2, 12 })
        {
            string path = _files.Bytes($"cut{cut}.jsonl.gz", whole[..cut]);
            var error = Assert.Throws<PargsException>(() => Read(path, new PreferenceReadOptions { OnBadRow = BadRowPolicy.Skip }));
            Assert.Contains($"cut{cut}.jsonl.gz", error.Message);
            Assert.Contains("gzip", error.Message);
            // Without skipping bad rows too: the cut-off last line is not reported as bad JSON first.
            Assert.Contains("gzip", Assert.Throws<PargsException>(() => Read(path)).Message);
        }
    }

    [Fact]
    public void Invalid_utf8_is_reported_on_its_own_line_and_a_bom_and_crlf_are_fine()
    {
        // Short rows: a reader that decodes whole buffers ahead would fail while still on an earlier line.
        var rows = Enumerable.Range(0, 60).Select(i => $$"""{"prompt":"p{{i}} {{new string('x', 5)}}","chosen":"yes","rejected":"no"}""").ToList();
        var bytes = new List<byte>();
        for (int i = 0; i < rows.Count; i++)
        {
            bytes.AddRange(System.Text.Encoding.UTF8.GetBytes(rows[i]));
            if (i == 49) bytes.AddRange(new byte[] { 0xC3, 0x28 }); // an invalid two-byte sequence on line 50
            bytes.AddRange("\r\n"u8.ToArray());
        }
        var gzipped = new MemoryStream();
        using (var gzip = new System.IO.Compression.GZipStream(gzipped, System.IO.Compression.CompressionLevel.Fastest, leaveOpen: true))
            gzip.Write(bytes.ToArray());
        foreach (var (name, content) in new[] { ("bad-utf8.jsonl", bytes.ToArray()), ("bad-utf8.jsonl.gz", gzipped.ToArray()) })
        {
            var error = Assert.Throws<PargsException>(() => Read(_files.Bytes(name, content)));
            Assert.Contains($"{name}:50: invalid UTF-8", error.Message);
        }
        byte[] bom = [0xEF, 0xBB, 0xBF, .. System.Text.Encoding.UTF8.GetBytes("{\"prompt\":\"a\",\"chosen\":\"b\",\"rejected\":\"c\"}\r\n")];
        Assert.Single(Read(_files.Bytes("bom.jsonl", bom)).Pairs);
    }

    [Fact]
    public void Lines_end_as_readline_ends_them_across_buffer_boundaries_plain_and_gzipped()
    {
        // Rows separated by \n, \r\n or a lone \r, with blank lines, some rows longer than the reader's 64 KiB
        // buffer (so separators fall on buffer edges), and one bad row whose line number must be ReadLine's.
        var random = new Random(5);
        var text = new System.Text.StringBuilder();
        var prompts = new List<string>();
        int lineNumber = 0, badLine = -1;
        string[] separators = ["\n", "\r\n", "\r"];
        string last = "";
        // After a lone \r, a \n would join it as one \r\n: a blank line there starts with \r.
        string Separator() => last = last == "\r" ? separators[1 + random.Next(2)] : separators[random.Next(3)];
        for (int i = 0; i < 400; i++)
        {
            if (random.Next(10) == 0) { text.Append(Separator()); lineNumber++; } // a blank line
            string prompt = $"p{i} " + new string('é', random.Next(10) == 0 ? 40_000 : random.Next(1, 30));
            prompts.Add(prompt);
            text.Append($$"""{"prompt":"{{prompt}}","chosen":"yes","rejected":"no"}""").Append(Separator());
            lineNumber++;
        }
        var good = System.Text.Encoding.UTF8.GetBytes(text.ToString());
        var gzipped = new MemoryStream();
        using (var gzip = new System.IO.Compression.GZipStream(gzipped, System.IO.Compression.CompressionLevel.Fastest, leaveOpen: true))
            gzip.Write(good);
        foreach (var (name, content) in new[] { ("lines.jsonl", good), ("lines.jsonl.gz", gzipped.ToArray()) })
            Assert.Equal(prompts, Read(_files.Bytes(name, content)).Pairs.Select(p => p.Prompt));

        badLine = lineNumber + 1;
        var bad = System.Text.Encoding.UTF8.GetBytes(text + "{\"prompt\": 1}\r\n");
        using var reader = new StreamReader(new MemoryStream(bad));
        int readLineCount = 0;
        while (reader.ReadLine() is not null) readLineCount++;
        Assert.Equal(badLine, readLineCount); // the test's own count agrees with ReadLine's
        Assert.Contains($"bad-line.jsonl:{badLine}:", Assert.Throws<PargsException>(() => Read(_files.Bytes("bad-line.jsonl", bad))).Message);
    }

    [Fact]
    public void A_truncated_gzip_whose_last_line_stops_inside_a_character_is_reported_as_truncated()
    {
        // Random CJK text compresses poorly, so a cut in the gzip lands in the last row's text, often mid-character.
        var random = new Random(9);
        string Text(int n) => new string(Enumerable.Range(0, n).Select(_ => (char)random.Next(0x4E00, 0x9FA5)).ToArray());
        var rows = Enumerable.Range(0, 300).Select(i => $$"""{"prompt":"p{{i}} {{Text(30)}}","chosen":"yes","rejected":"no"}""").ToArray();
        byte[] whole = File.ReadAllBytes(_files.Gzip("multibyte.jsonl.gz", rows));
        for (int cut = whole.Length - 20; cut > whole.Length - 1500; cut -= 3)
        {
            var error = Assert.Throws<PargsException>(() => Read(_files.Bytes("cut.jsonl.gz", whole[..cut])));
            Assert.Contains("gzip", error.Message);
        }
    }

    [Fact]
    public void Garbage_after_gzip_magic_is_a_clear_error()
    {
        var garbage = new byte[200];
        new Random(3).NextBytes(garbage);
        garbage[0] = 0x1F; garbage[1] = 0x8B; garbage[2] = 8; garbage[3] = 0;
        string path = _files.Bytes("garbage.jsonl.gz", garbage);
        var error = Assert.Throws<PargsException>(() => Read(path, new PreferenceReadOptions { OnBadRow = BadRowPolicy.Skip }));
        Assert.Contains("garbage.jsonl.gz", error.Message);
        Assert.Contains("gzip", error.Message);
    }

    [Fact]
    public void Blank_lines_are_not_rows_and_a_file_with_no_valid_pair_is_an_error()
    {
        string path = _files.Jsonl("blank.jsonl", "", """{"prompt":"a","chosen":"b","rejected":"c"}""", "   ");
        var (pairs, report) = Read(path);
        Assert.Equal(1, report.RowsRead);
        Assert.Equal(2, pairs[0].SourceLine);

        string none = _files.Jsonl("none.jsonl", """{"prompt":"a","chosen":"b","rejected":"b"}""");
        var error = Assert.Throws<PargsException>(() => Read(none, new PreferenceReadOptions { OnBadRow = BadRowPolicy.Skip }));
        Assert.Contains("none.jsonl", error.Message);
        Assert.Contains("1 IdenticalResponses", error.Message);
    }

    [Fact]
    public void Missing_file_names_the_path()
    {
        var error = Assert.Throws<PargsException>(() => Read(Path.Combine(_files.Folder, "nope.jsonl")));
        Assert.Contains("nope.jsonl", error.Message);
    }

    [Fact]
    public void Template_by_name_and_unknown_names()
    {
        Assert.Same(PromptTemplate.Hh, PromptTemplate.FromName("HH"));
        Assert.Equal("\n\nHuman: hi\n\nAssistant:", PromptTemplate.Hh.RenderPrompt("hi"));
        Assert.Equal("hi", PromptTemplate.Plain.RenderPrompt("hi"));
        Assert.Equal("<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n", PromptTemplate.ChatMl.RenderPrompt("hi"));
        var error = Assert.Throws<PargsException>(() => PromptTemplate.FromName("alpaca"));
        Assert.Contains("plain, hh, chatml", error.Message);
    }
}
