using System.Security.Cryptography;
using System.Text;

namespace Pargs.IO;

/// <summary>
/// The one way Pargs replaces a file: write a temporary file with a unique random name in the target's own
/// folder (so the rename stays on one file system), flush it to disk, then rename it over the target. A
/// reader sees the old file or the new one, never half of either; two runs writing the same path each
/// write their own temporary file, so the last rename wins with a whole file instead of both tearing one
/// shared ".tmp". On any failure the temporary file is deleted and the target is left as it was.
/// <para>A device path such as /dev/stdout is written in place: a rename would replace the device.</para>
/// </summary>
public static class AtomicFile
{
    static readonly UTF8Encoding Utf8NoBom = new(false);

    /// <summary>A fresh temporary path next to <paramref name="path"/>, keeping its extension last (some writers pick the format from it).</summary>
    public static string TemporaryPathFor(string path)
    {
        string full = Path.GetFullPath(path);
        string folder = Path.GetDirectoryName(full) ?? ".";
        string name = Path.GetFileNameWithoutExtension(full);
        string random = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8));
        return Path.Combine(folder, $".{name}.{random}.tmp{Path.GetExtension(full)}");
    }

    /// <summary>Replaces <paramref name="path"/> with what <paramref name="write"/> writes to the stream.</summary>
    public static void Write(string path, Action<Stream> write)
    {
        if (DevicePaths.IsDevice(path))
        {
            using var device = new FileStream(path, FileMode.Open, FileAccess.Write);
            write(device);
            return;
        }
        WriteVia(path, temporary =>
        {
            using var stream = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16);
            write(stream);
            stream.Flush(flushToDisk: true);
        });
    }

    /// <summary>
    /// Replaces <paramref name="path"/> with the file <paramref name="write"/> creates at the temporary path it
    /// is given (for writers that only take a path, e.g. a plot library).
    /// </summary>
    public static void WriteVia(string path, Action<string> write)
    {
        string full = Path.GetFullPath(path);
        if (Directory.Exists(full)) throw new PargsException($"{path}: is a folder, cannot write a file there");
        if (Path.GetDirectoryName(full) is { } folder) Directory.CreateDirectory(folder);
        string temporary = TemporaryPathFor(full);
        try
        {
            write(temporary);
            File.Move(temporary, full, overwrite: true);
        }
        catch
        {
            TryDelete(temporary);
            throw;
        }
    }

    /// <summary>Replaces <paramref name="path"/> with <paramref name="text"/> as UTF-8 without a byte-order mark.</summary>
    public static void WriteAllText(string path, string text) =>
        Write(path, stream => stream.Write(Utf8NoBom.GetBytes(text)));

    public static void WriteAllBytes(string path, ReadOnlySpan<byte> bytes)
    {
        byte[] copy = bytes.ToArray();
        Write(path, stream => stream.Write(copy));
    }

    /// <summary>Replaces <paramref name="path"/> with these lines, each ended by "\n".</summary>
    public static void WriteAllLines(string path, IEnumerable<string> lines) =>
        WriteText(path, writer =>
        {
            foreach (var line in lines)
            {
                writer.Write(line);
                writer.Write('\n');
            }
        });

    /// <summary>Replaces <paramref name="path"/> with what <paramref name="write"/> writes as UTF-8 text.</summary>
    public static void WriteText(string path, Action<TextWriter> write) =>
        Write(path, stream =>
        {
            using var writer = new StreamWriter(stream, Utf8NoBom, 1 << 16, leaveOpen: true);
            write(writer);
            writer.Flush();
        });

    static void TryDelete(string path)
    {
        try { File.Delete(path); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }
}
