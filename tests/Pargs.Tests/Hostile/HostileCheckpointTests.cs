using System.Text;
using Pargs.Checkpoints;
using Pargs.Tests.Checkpoints;

namespace Pargs.Tests.Hostile;

/// <summary>Structurally hostile checkpoint headers (issue 13): each must end in a one-line PargsException, quickly.</summary>
public class HostileCheckpointTests
{
    static string Refused(Action read) => Assert.Throws<PargsException>(read).Message;

    /// <summary>A GGUF v3 with no metadata and one tensor entry written exactly as given (the writer under test would refuse it).</summary>
    static byte[] GgufWithTensor(string name, ulong[] ne, uint type, ulong offset, int dataBytes)
    {
        using var ms = new MemoryStream();
        using var w = new BinaryWriter(ms);
        w.Write(GgufFile.Magic); w.Write(3u); w.Write(1UL); w.Write(0UL);
        var nameBytes = Encoding.UTF8.GetBytes(name);
        w.Write((ulong)nameBytes.Length); w.Write(nameBytes);
        w.Write((uint)ne.Length);
        foreach (var d in ne) w.Write(d);
        w.Write(type); w.Write(offset);
        while (ms.Position % 32 != 0) w.Write((byte)0);
        w.Write(new byte[dataBytes]);
        w.Flush();
        return ms.ToArray();
    }

    [Fact]
    public void Gguf_metadata_nested_300000_deep_is_refused_without_overflowing_the_stack()
    {
        using var temp = new TempDir();
        using var ms = new MemoryStream();
        using (var w = new BinaryWriter(ms, Encoding.UTF8, leaveOpen: true))
        {
            w.Write(GgufFile.Magic); w.Write(3u); w.Write(0UL); w.Write(1UL);
            w.Write(1UL); w.Write((byte)'a');
            w.Write(9u); // an array ...
            for (int i = 0; i < 300_000; i++) { w.Write(9u); w.Write(1UL); } // ... of one array, 300,000 times
            w.Write(0u); w.Write(0UL);
        }
        string path = temp.File("deep.gguf");
        File.WriteAllBytes(path, ms.ToArray());
        Assert.Contains("nests arrays more than", Refused(() => GgufFile.Read(path)));
    }

    [Fact]
    public void Gguf_sizes_and_offsets_that_overflow_are_refused()
    {
        using var temp = new TempDir();
        string dims = temp.File("dims.gguf");
        File.WriteAllBytes(dims, GgufWithTensor("w", [4, 1UL << 62], 0, 0, 64));
        Assert.Contains("overflows", Refused(() => GgufFile.Read(dims)));
        string square = temp.File("square.gguf");
        File.WriteAllBytes(square, GgufWithTensor("w", [1UL << 32, 1UL << 32], 0, 0, 64));
        Assert.Contains("overflows", Refused(() => GgufFile.Read(square)));
        string bytes = temp.File("bytes.gguf");
        File.WriteAllBytes(bytes, GgufWithTensor("w", [1UL << 31, 1UL << 31], 0, 0, 64)); // 2^62 elements: 2^64 bytes of F32
        Assert.Contains("too large to store", Refused(() => GgufFile.Read(bytes)));
        string offset = temp.File("offset.gguf");
        File.WriteAllBytes(offset, GgufWithTensor("w", [4], 0, (1UL << 63) - 32, 64));
        Assert.Contains("beyond the end of the file", Refused(() => GgufFile.Read(offset)));
        string unsignedDim = temp.File("u64.gguf");
        File.WriteAllBytes(unsignedDim, GgufWithTensor("w", [ulong.MaxValue], 0, 0, 64));
        Assert.Contains("beyond any file", Refused(() => GgufFile.Read(unsignedDim)));
        string unreadable = temp.File("q6k.gguf");
        File.WriteAllBytes(unreadable, GgufWithTensor("w", [1UL << 40], (uint)GgmlType.Q6_K, 0, 64));
        Assert.Contains("more than a", Refused(() => GgufFile.Read(unreadable)));
    }

    [Fact]
    public void Gguf_array_lengths_are_bounded_by_the_file_before_allocating()
    {
        using var temp = new TempDir();
        string path = temp.File("long-array.gguf");
        // 2^40 u64 values claimed by a file of a few dozen bytes.
        new RawGgufWriter(3).Add("a", 9, w => { w.Write(10u); w.Write(1UL << 40); }).Save(path);
        Assert.Contains("larger than the file allows", Refused(() => GgufFile.Read(path)));
        string dup = temp.File("dup.gguf");
        new RawGgufWriter(3).U32("a", 1).U32("a", 2).Save(dup);
        Assert.Contains("appears twice", Refused(() => GgufFile.Read(dup)));
    }

    [Fact]
    public void Gguf_context_length_beyond_int_range_is_an_error_not_wrapped()
    {
        using var temp = new TempDir();
        string path = temp.File("ctx.gguf");
        new RawGgufWriter(3).String("general.architecture", "llama")
            .U32("llama.embedding_length", 8).U32("llama.feed_forward_length", 16).U32("llama.block_count", 1)
            .U32("llama.attention.head_count", 2)
            .Add("llama.context_length", 10, w => w.Write((1UL << 32) + 16))
            .TensorF32("token_embd.weight", [8, 4], new float[32])
            .Save(path);
        var gguf = GgufFile.Read(path);
        Assert.Equal((1L << 32) + 16, gguf.GetInteger("llama.context_length"));
        Assert.Equal($"{path}: GGUF metadata \"llama.context_length\" = 4294967312 is out of range (expected 1 to 2147483647)",
            Refused(() => GgufCheckpoint.ReadConfig(gguf)));
    }

    [Fact]
    public void Safetensors_shapes_that_overflow_are_refused()
    {
        using var temp = new TempDir();
        string Write(string header)
        {
            string path = temp.File($"{Guid.NewGuid():N}.safetensors");
            var bytes = Encoding.UTF8.GetBytes(header);
            File.WriteAllBytes(path, [.. BitConverter.GetBytes((ulong)bytes.Length), .. bytes]);
            return path;
        }
        Assert.Contains("overflows", Refused(() => Safetensors.ReadHeader(Write("""{"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}}"""))));
        Assert.Contains("too large to store", Refused(() => Safetensors.ReadHeader(Write("""{"w":{"dtype":"F32","shape":[2147483648,2147483648],"data_offsets":[0,0]}}"""))));
        Assert.Contains("Duplicate property", Refused(() => Safetensors.ReadHeader(Write("""{"w":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},"w":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}}"""))));
        Assert.Contains("not valid JSON", Refused(() => Safetensors.ReadHeader(Write(new string('[', 100_000)))));
        Assert.Contains("outside the data section", Refused(() => Safetensors.ReadHeader(Write("""{"w":{"dtype":"F32","shape":[1],"data_offsets":[9223372036854775800,9223372036854775804]}}"""))));
    }

    [Fact]
    public void Llama2c_headers_whose_sizes_overflow_are_refused()
    {
        using var temp = new TempDir();
        string Write(params int[] fields)
        {
            string path = temp.File($"{Guid.NewGuid():N}.bin");
            File.WriteAllBytes(path, fields.SelectMany(BitConverter.GetBytes).Concat(new byte[64]).ToArray());
            return path;
        }
        Assert.Contains("implausible", Refused(() => Llama2cCheckpoint.Load(Write(8, 16, 1, 2, 2, int.MinValue, 16))));
        Assert.Contains("more bytes than any file holds", Refused(() => Llama2cCheckpoint.Load(Write(1 << 24, 1 << 24, 1 << 24, 1 << 10, 1 << 10, 1 << 24, 1 << 24))));
    }
}

/// <summary>Inputs the long fuzzer runs found (PARGS_FUZZ_CASES=1500), kept as regression cases.</summary>
public class FuzzFoundRegressionTests
{
    [Fact]
    public void Gguf_keys_of_binary_junk_stay_one_printable_line_in_messages()
    {
        using var temp = new TempDir();
        string path = temp.File("junk-key.gguf");
        // A damaged length swallowed the next entries into the key: the message quoted raw bytes over several lines.
        new RawGgufWriter(3).U32("a\n\0b\u0006", 1).U32("a\n\0b\u0006", 2).Save(path);
        string message = Assert.Throws<PargsException>(() => GgufFile.Read(path)).Message;
        Assert.Contains("\"a\\x0a\\x00b\\x06\"", message);
        Assert.DoesNotContain('\n', message);
        Assert.All(message, c => Assert.False(char.IsControl(c)));
    }

    [Fact]
    public void An_optimizer_bin_with_a_huge_tensor_rank_is_a_PargsException()
    {
        using var temp = new TempDir();
        var model = TorchSharp.torch.nn.Linear(4, 3);
        var optimizer = new Pargs.Training.Optimizers.AdamW(model.parameters(), 1e-3, 0.9, 0.999, 1e-8, 0); // its step holds its Scalars
        using (var loss = model.forward(TorchSharp.torch.ones(2, 4)).sum()) loss.backward();
        optimizer.step();
        string path = temp.File("optimizer.bin");
        optimizer.save_state_dict(path);
        // Fuzz case 1343: a tensor's rank became 0xFFFFFFFF; TorchSharp allocates for it before any check.
        File.WriteAllBytes(path, new Pargs.Tests.Fuzzing.Mutator(20261206).Binary(File.ReadAllBytes(path), 1343));
        Assert.StartsWith(path, Assert.Throws<PargsException>(() => Pargs.Training.TrainingCheckpoints.LoadOptimizerState(path, optimizer)).Message);
    }
}

public class HostileConfigSizeTests
{
    [Fact]
    public void A_config_claiming_two_billion_layers_is_refused_before_allocating_for_them()
    {
        using var temp = new TempDir();
        string folder = temp.File("model");
        Directory.CreateDirectory(folder);
        File.Copy(Path.Combine(TestPaths.ShippedPartialRm, "model.safetensors"), Path.Combine(folder, "model.safetensors"));
        string config = File.ReadAllText(Path.Combine(TestPaths.ShippedPartialRm, "config.json"));
        var json = System.Text.Json.Nodes.JsonNode.Parse(config)!.AsObject();
        json["num_hidden_layers"] = 2_000_000_000;
        File.WriteAllText(Path.Combine(folder, "config.json"), json.ToJsonString());
        string? problem = Pargs.Tests.Fuzzing.FuzzHarness.RunOne(() =>
            Assert.Contains("claims 2000000000 layers", Assert.Throws<PargsException>(() => CheckpointLoader.Load(folder)).Message));
        Assert.Null(problem); // within the fuzzer's time and allocation bounds
    }
}
