namespace Pargs.Tokenizers;

/// <summary>
/// Every token's bytes in one array, found by offset. WHY: a byte[] per token costs a 24-byte object header and an
/// 8-byte reference beside its few bytes; at a 128k–152k-token vocabulary that is ~4 MiB per tokenizer held for the
/// whole run (measured in docs/benchmarks.md, "Resident memory: where the fixed part goes"), which counts against the
/// ≤ 1.1 × file-size resident budget of a stored-precision model.
/// </summary>
public sealed class TokenByteTable
{
    readonly byte[] _bytes;
    readonly int[] _starts; // token id's bytes are _bytes[_starts[id].._starts[id + 1]]

    /// <summary>The table of <paramref name="count"/> tokens whose bytes <paramref name="bytesOf"/> gives, in id order.</summary>
    public TokenByteTable(int count, Func<int, byte[]> bytesOf)
    {
        _starts = new int[count + 1];
        var pieces = new byte[count][];
        long total = 0;
        for (int id = 0; id < count; id++)
        {
            pieces[id] = bytesOf(id);
            total += pieces[id].Length;
            if (total > Array.MaxLength) throw new PargsException($"tokenizer: the {count:N0} tokens' bytes exceed {Array.MaxLength:N0} bytes");
            _starts[id + 1] = (int)total;
        }
        _bytes = new byte[total];
        for (int id = 0; id < count; id++) pieces[id].CopyTo(_bytes, _starts[id]);
    }

    public int Count => _starts.Length - 1;

    /// <summary>Token <paramref name="id"/>'s bytes (a view; the caller checks the id).</summary>
    public ReadOnlySpan<byte> this[int id] => _bytes.AsSpan(_starts[id], _starts[id + 1] - _starts[id]);
}
