namespace Pargs;

/// <summary>Output paths that are not files: what Pargs' write-then-rename outputs must write in place instead.</summary>
public static class DevicePaths
{
    /// <summary>
    /// An existing path under /dev or /proc (on Unix) other than the ordinary folders there (/dev/shm, /dev/mqueue):
    /// a device or a process's stream such as /dev/stdout. A rename would replace it with a regular file.
    /// </summary>
    public static bool IsDevice(string path)
    {
        if (OperatingSystem.IsWindows()) return false;
        string full = Path.GetFullPath(path);
        bool special = (full.StartsWith("/dev/") && !full.StartsWith("/dev/shm/") && !full.StartsWith("/dev/mqueue/")) || full.StartsWith("/proc/");
        return special && File.Exists(full);
    }
}
