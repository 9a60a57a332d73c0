using System.IO.Compression;
using System.Text;

namespace Pargs.Data;

/// <summary>
/// The lines of a .jsonl or .jsonl.gz file, with 1-based line numbers. Gzip is recognised by its magic bytes
/// (1f 8b), not by the extension, so a mis-named file still reads. .NET's GZipStream does NOT notice a truncated
/// file (it just stops early, which would silently drop rows), so we check the gzip trailer ourselves: the
/// CRC-32 and length of everything decompressed must match the file's last 8 bytes. A concatenation of several
/// gzip members fails that check (the trailer covers only the last member); recompress such files as one.
/// </summary>
internal static class JsonlLines
{
    /// <summary>The default cap on one line's bytes: far above any real row, far below what hangs a tokenizer or fills memory.</summary>
    public const int DefaultMaxLineBytes = 1 << 20;

    /// <summary>
    /// The file's lines. A line longer than <paramref name="maxLineBytes"/> is not kept in memory: it comes back
    /// with a null text and its length, so the caller refuses or skips it by line number before any parsing.
    /// </summary>
    public static IEnumerable<(int Line, string? Text, long Bytes)> Read(string path, int maxLineBytes = DefaultMaxLineBytes, string expected = "a .jsonl or .jsonl.gz preference file")
    {
        if (Directory.Exists(path))
            throw new PargsException($"{path}: is a folder; expected {expected}.");
        if (!File.Exists(path))
            throw new PargsException($"{path}: file not found (expected {expected}).");

        using var file = File.OpenRead(path);
        var magic = new byte[2];
        bool isGzip = file.Read(magic, 0, 2) == 2 && magic[0] == 0x1F && magic[1] == 0x8B;
        file.Position = 0;

        GzipTrailer? trailer = null;
        Stream content = file;
        if (isGzip)
        {
            trailer = GzipTrailer.ReadFrom(file, path);
            content = new CheckingStream(new GZipStream(file, CompressionMode.Decompress, leaveOpen: true));
        }
        else if (path.EndsWith(".gz", StringComparison.OrdinalIgnoreCase))
        {
            throw new PargsException($"{path}: named .gz but does not start with the gzip magic bytes 1f 8b; expected gzip data.");
        }

        using var bytes = new LineSplitter(content, path, maxLineBytes);
        var utf8 = new UTF8Encoding(false, throwOnInvalidBytes: true);
        // Each line is decoded and handed out only once the next one was read: the last line of a truncated gzip
        // file is cut short (mid-character, too), and the trailer check below must speak before anyone complains
        // about that fragment. Decoded line by line: a StreamReader decodes whole buffers ahead, so its error named
        // an earlier line.
        string? Decode(byte[]? raw, int number)
        {
            if (raw is null) return null;
            int skip = number == 1 && raw.AsSpan().StartsWith(Utf8Bom) ? Utf8Bom.Length : 0;
            try { return utf8.GetString(raw.AsSpan(skip)); }
            catch (DecoderFallbackException e) { throw new PargsException($"{path}:{number}: invalid UTF-8 text (expected {expected} in UTF-8).", e); }
        }
        int line = 0;
        (byte[]? Bytes, long Length)? pending = null;
        while (bytes.Next() is { } raw)
        {
            if (pending is { } p) yield return (line, Decode(p.Bytes, line), p.Length);
            line++;
            pending = raw;
        }

        if (content is CheckingStream checking && trailer is { } trailerExpected)
        {
            if (checking.Length32 != trailerExpected.Length32 || checking.Crc != trailerExpected.Crc)
                throw new PargsException(
                    $"{path}: gzip data is truncated or corrupt after line {line}: decompressed {checking.Length32} bytes " +
                    $"with CRC-32 {checking.Crc:x8}, but the gzip trailer expects {trailerExpected.Length32} bytes with CRC-32 {trailerExpected.Crc:x8}.");
        }
        if (pending is { } last) yield return (line, Decode(last.Bytes, line), last.Length);
    }

    static readonly byte[] Utf8Bom = [0xEF, 0xBB, 0xBF];

    /// <summary>
    /// The stream's lines as raw bytes, ended by \n, \r\n or a lone \r (as StreamReader.ReadLine ends them); a
    /// corrupt gzip stream is reported with the file's name.
    /// </summary>
    sealed class LineSplitter(Stream content, string path, int maxLineBytes) : IDisposable
    {
        readonly byte[] buffer = new byte[1 << 16];
        readonly MemoryStream current = new();
        int start, end;
        long length; // of the current line, counted even past the cap
        bool finished, afterCarriageReturn;

        /// <summary>The next line's bytes (null when over the cap) and its length; null at the end.</summary>
        public (byte[]? Bytes, long Length)? Next()
        {
            while (true)
            {
                if (start == end && !Refill()) return length > 0 ? Take() : null;
                // A \r ended the previous line: a \n right after it (maybe in the next buffer) belongs to it.
                if (afterCarriageReturn)
                {
                    afterCarriageReturn = false;
                    if (buffer[start] == (byte)'\n') { start++; continue; }
                }
                int at = buffer.AsSpan(start, end - start).IndexOfAny((byte)'\r', (byte)'\n');
                if (at < 0)
                {
                    Keep(end - start);
                    start = end;
                    continue;
                }
                Keep(at);
                afterCarriageReturn = buffer[start + at] == (byte)'\r';
                start += at + 1;
                return Take();
            }
        }

        /// <summary>Reads the next buffer; false at the end of the stream.</summary>
        bool Refill()
        {
            if (finished) return false;
            try { end = content.Read(buffer, 0, buffer.Length); }
            catch (InvalidDataException e) { throw new PargsException($"{path}: corrupt gzip data: {e.Message}", e); }
            start = 0;
            finished = end == 0;
            return !finished;
        }

        void Keep(int count)
        {
            length += count;
            if (length <= maxLineBytes) current.Write(buffer, start, count);
        }

        (byte[]? Bytes, long Length) Take()
        {
            var line = length <= maxLineBytes ? current.ToArray() : null;
            var result = (line, length);
            current.SetLength(0);
            length = 0;
            return result;
        }

        public void Dispose() => current.Dispose();
    }

    readonly record struct GzipTrailer(uint Crc, uint Length32)
    {
        public static GzipTrailer ReadFrom(FileStream file, string path)
        {
            // 10-byte header + 8-byte trailer is the smallest possible gzip file.
            if (file.Length < 18)
                throw new PargsException($"{path}: gzip file is only {file.Length} bytes (truncated; expected at least 18).");
            var tail = new byte[8];
            file.Position = file.Length - 8;
            file.ReadExactly(tail);
            file.Position = 0;
            return new GzipTrailer(BitConverter.ToUInt32(tail, 0), BitConverter.ToUInt32(tail, 4));
        }
    }

    /// <summary>Passes decompressed bytes through while keeping their CRC-32 and length (mod 2^32, as gzip stores it).</summary>
    sealed class CheckingStream(Stream inner) : Stream
    {
        public uint Crc { get; private set; }
        public uint Length32 { get; private set; }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            int n = inner.Read(buffer);
            Crc = Crc32.Append(Crc, buffer[..n]);
            Length32 = unchecked(Length32 + (uint)n);
            return n;
        }

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing) inner.Dispose();
            base.Dispose(disposing);
        }
    }
}
