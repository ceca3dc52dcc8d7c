using System;
using System.IO;

namespace UmlMicro.Contracts.Servers;

/// <summary>
/// The private host directories a guest's kernel keeps its state in (the copy-on-write layer, tmpfs contents): removed
/// whole when the guest ends, by the supervisor or, if it was killed, by the VFS.
/// </summary>
public static class StateDirectory
{
    /// <summary>
    /// Removes <paramref name="dir"/> and everything in it; returns the problem, or null. The guest may have left
    /// directories without write or search permission (chmod 555, 000) in it: root removes them anyway, another user
    /// must first give them back to itself, as <c>rm -rf</c> would not.
    /// </summary>
    public static string? Remove(string dir)
    {
        if (dir.Length == 0 || !Directory.Exists(dir)) return null;
        try
        {
            Directory.Delete(dir, recursive: true);
            return null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            try
            {
                OpenUp(new DirectoryInfo(dir));
                Directory.Delete(dir, recursive: true);
                return null;
            }
            catch (Exception again) when (again is IOException or UnauthorizedAccessException)
            {
                return again.Message;
            }
        }
    }

    private static void OpenUp(DirectoryInfo dir)
    {
        if (dir.LinkTarget is not null) return; // a link is removed, never followed
        const UnixFileMode Owner = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
        if ((dir.UnixFileMode & Owner) != Owner) dir.UnixFileMode |= Owner;
        foreach (var sub in dir.EnumerateDirectories()) OpenUp(sub);
    }
}
