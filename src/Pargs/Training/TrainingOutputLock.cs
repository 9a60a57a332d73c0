using System.Diagnostics;

namespace Pargs.Training;

/// <summary>
/// An advisory lock on a training output folder, so two runs never interleave checkpoints, metrics and model
/// files in one folder. The lock is an exclusive open of <see cref="LockFile"/> (on Unix .NET takes it as an
/// flock, which the kernel drops when the process dies, so a kill -9 leaves no stale lock); who holds it is
/// written beside it in <see cref="OwnerFile"/> so the second run's error can name the first. Acquiring is
/// re-entrant within a process (the CLI holds it around a whole command, the training loop again inside).
/// Disposing the last holder of a folder that this lock created and that stayed empty removes the folder, so
/// a run that failed before writing anything leaves nothing behind.
/// </summary>
public sealed class TrainingOutputLock : IDisposable
{
    public const string LockFile = ".pargs-train.lock";
    public const string OwnerFile = ".pargs-train.owner";

    static readonly object Gate = new();
    static readonly Dictionary<string, Holder> Held = new(StringComparer.Ordinal);

    sealed class Holder(FileStream stream, bool createdFolder)
    {
        public FileStream Stream { get; } = stream;
        public bool CreatedFolder { get; } = createdFolder;
        public int Count { get; set; } = 1;
    }

    readonly string _folder;
    bool _disposed;

    TrainingOutputLock(string folder) => _folder = folder;

    /// <summary>Takes the lock on <paramref name="folder"/> (creating it), or throws naming the run that holds it.</summary>
    public static TrainingOutputLock Acquire(string folder)
    {
        string full = Path.GetFullPath(folder);
        lock (Gate)
        {
            if (Held.TryGetValue(full, out var holder))
            {
                holder.Count++;
                return new TrainingOutputLock(full);
            }
            bool created = !Directory.Exists(full);
            Directory.CreateDirectory(full);
            string lockPath = Path.Combine(full, LockFile);
            FileStream stream;
            try
            {
                stream = new FileStream(lockPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            }
            catch (IOException)
            {
                throw new PargsException($"{folder}: another Pargs run is writing into this folder ({Owner(full)}); wait for it to end or choose another output folder");
            }
            catch (UnauthorizedAccessException e)
            {
                throw new PargsException($"{folder}: cannot lock the output folder ({e.Message})", e);
            }
            try
            {
                using var process = Process.GetCurrentProcess();
                string owner = $"process {Environment.ProcessId} on {Environment.MachineName}, started {process.StartTime.ToUniversalTime():yyyy-MM-dd HH:mm:ss} UTC: {Environment.CommandLine}";
                if (owner.Length > 300) owner = owner[..300] + "...";
                File.WriteAllText(Path.Combine(full, OwnerFile), owner + "\n");
            }
            catch (IOException) { } // the owner note only improves the other run's message
            Held[full] = new Holder(stream, created);
            return new TrainingOutputLock(full);
        }
    }

    /// <summary>Whether <paramref name="folder"/> is locked by this process (for code that requires the lock).</summary>
    public static bool IsHeld(string folder)
    {
        lock (Gate) return Held.ContainsKey(Path.GetFullPath(folder));
    }

    static string Owner(string folder)
    {
        try
        {
            string text = File.ReadAllText(Path.Combine(folder, OwnerFile)).Trim();
            return text.Length > 0 ? text : "owner unknown";
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return $"{Path.Combine(folder, LockFile)} is locked";
        }
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        lock (Gate)
        {
            var holder = Held[_folder];
            if (--holder.Count > 0) return;
            Held.Remove(_folder);
            bool empty = holder.CreatedFolder && Directory.EnumerateFileSystemEntries(_folder)
                .All(entry => Path.GetFileName(entry) is LockFile or OwnerFile);
            if (!empty)
            {
                TryDelete(Path.Combine(_folder, OwnerFile));
                holder.Stream.Dispose();
                return;
            }
            holder.Stream.Dispose();
            TryDelete(Path.Combine(_folder, OwnerFile));
            TryDelete(Path.Combine(_folder, LockFile));
            try { Directory.Delete(_folder); }
            catch (IOException) { } // something appeared meanwhile: leave it
        }
    }

    static void TryDelete(string path)
    {
        try { File.Delete(path); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }
}
