using System.IO.MemoryMappedFiles;
using Pargs.Checkpoints;

namespace Pargs.Weights;

/// <summary>
/// A file mapped read-only into memory, so weight tensors can be views into it (<see cref="Matrix"/>): no copy,
/// pages loaded on first touch and shared with the page cache. Every view is bounds-checked against the file
/// and names what asked for it. Dispose only after the last view is done: the views point into the mapping.
/// </summary>
public sealed unsafe class MappedFile : IDisposable
{
    readonly MemoryMappedFile mapping;
    readonly MemoryMappedViewAccessor view;
    byte* start;

    MappedFile(string path, long length, MemoryMappedFile mapping, MemoryMappedViewAccessor view)
    {
        Path = path;
        Length = length;
        this.mapping = mapping;
        this.view = view;
        byte* pointer = null;
        view.SafeMemoryMappedViewHandle.AcquirePointer(ref pointer);
        start = pointer + view.PointerOffset;
    }

    public string Path { get; }
    public long Length { get; }

    /// <summary>Maps <paramref name="path"/> read-only; a missing, unreadable or empty file is a <see cref="PargsException"/>.</summary>
    public static MappedFile Open(string path)
    {
        FileStream? stream = null;
        try
        {
            stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
            long length = stream.Length;
            if (length == 0) throw new PargsException($"{path}: the file is empty");
            var mapping = MemoryMappedFile.CreateFromFile(stream, null, 0, MemoryMappedFileAccess.Read, HandleInheritability.None, leaveOpen: false);
            stream = null; // the mapping owns it now
            try
            {
                return new MappedFile(path, length, mapping, mapping.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read));
            }
            catch
            {
                mapping.Dispose();
                throw;
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            throw new PargsException($"{path}: cannot map the file ({e.Message})");
        }
        finally
        {
            stream?.Dispose();
        }
    }

    /// <summary>The address of bytes [offset, offset + length), after checking they are inside the file.</summary>
    public byte* Pointer(long offset, long length, string what)
    {
        ObjectDisposedException.ThrowIf(start == null, this);
        if (offset < 0 || length < 0 || offset > Length || length > Length - offset)
            throw new PargsException($"{Path}: {what} spans bytes [{offset}, {offset + length}), past the end of the file ({Length} bytes; truncated?)");
        return start + offset;
    }

    /// <summary>Bytes [offset, offset + length) as a span (for headers and small tensors).</summary>
    public ReadOnlySpan<byte> Bytes(long offset, int length, string what) => new(Pointer(offset, length, what), length);

    /// <summary>A [rows, cols] matrix in <paramref name="format"/> stored at <paramref name="offset"/>, read in place.</summary>
    public WeightMatrix Matrix(string name, WeightFormat format, int rows, int cols, long offset)
    {
        long bytes = WeightFormats.ByteCount(format, (long)rows * cols, $"{Path}: tensor \"{name}\"");
        byte* data = Pointer(offset, bytes, $"tensor \"{name}\"");
        return new WeightMatrix(name, format, rows, cols, data, bytes, this);
    }

    /// <summary>
    /// A GGUF tensor of this (GGUF) file as a matrix read in place: [rows, cols] from its row-major shape (a 1-D
    /// tensor is one row). A type Pargs cannot compute on, or data past the end of the file, is an error naming it.
    /// </summary>
    public WeightMatrix Matrix(GgufTensorInfo tensor)
    {
        var format = WeightFormats.FromGgml(tensor.Type, tensor.Name);
        if (tensor.Shape.Length is < 1 or > 2)
            throw new PargsException($"{Path}: tensor \"{tensor.Name}\" has {tensor.Shape.Length} dimensions; a weight matrix has 1 or 2");
        long rows = tensor.Shape.Length == 2 ? tensor.Shape[0] : 1, cols = tensor.Shape[^1];
        if (rows > int.MaxValue || cols > int.MaxValue)
            throw new PargsException($"{Path}: tensor \"{tensor.Name}\" of shape [{string.Join(", ", tensor.Shape)}] is too large for a weight matrix");
        return Matrix(tensor.Name, format, (int)rows, (int)cols, tensor.Offset);
    }

    public void Dispose()
    {
        if (start == null) return;
        start = null;
        view.SafeMemoryMappedViewHandle.ReleasePointer();
        view.Dispose();
        mapping.Dispose();
    }
}
