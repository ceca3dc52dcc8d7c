using System.Text;
using UmlMicro.Contracts.Linux;

namespace UmlMicro.Servers.Vfs;

/// <summary>
/// The files of /proc/sys/kernel that say what the kernel is, so that they agree with uname (the host's
/// would name the host's kernel). Each is materialised as a small read-only host file in this server's own
/// folder and handed to the host by path: the guest reads it natively, as Linux generates a proc file at
/// open. The folder is private to this server process and removed when it exits.
/// </summary>
internal sealed class KernelFiles : IDisposable
{
    private readonly Dictionary<string, string> _hostPathOf = new(StringComparer.Ordinal);
    private readonly string _dir;

    public KernelFiles(string release, string hostname)
    {
        _dir = Directory.CreateTempSubdirectory($"umlmicro-vfs-{Environment.ProcessId}-").FullName;
        Add("/proc/sys/kernel/osrelease", release);
        Add("/proc/sys/kernel/hostname", hostname);
        Add("/proc/sys/kernel/ostype", "Linux");
    }

    private void Add(string guestPath, string value)
    {
        if (value.Length == 0) return; // not configured: the guest sees the host's file
        string host = Path.Combine(_dir, guestPath.Replace('/', '_').TrimStart('_'));
        File.WriteAllText(host, value + "\n", new UTF8Encoding(false));
        File.SetUnixFileMode(host, UnixFileMode.UserRead | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        _hostPathOf[guestPath] = host;
    }

    /// <summary>
    /// The host file behind a walked guest path, or null when the path is not one of these files. Writing is
    /// EACCES: the kernel's name is the supervisor's configuration, not the guest's to change.
    /// </summary>
    public string? Lookup(string guestPath, int openFlags, out int errno)
    {
        errno = 0;
        if (!_hostPathOf.TryGetValue(guestPath, out var host)) return null;
        if ((openFlags & LinuxFlags.O_ACCMODE) != 0 || (openFlags & LinuxFlags.O_TRUNC) != 0) errno = Errno.EACCES;
        return host;
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
            // Already gone; nothing to keep.
        }
    }
}
