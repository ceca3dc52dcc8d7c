using UmlMicro.Contracts.Linux;
using UmlMicro.Contracts.Servers;
using UmlMicro.Supervisor.Servers;

namespace UmlMicro.Supervisor.Guest;

/// <summary>
/// The two host files of a procfs Render (<see cref="ProcRender"/>) that the supervisor touches so that the VFS need
/// not be asked twice: it reads the host's text of the task (<see cref="ProcRender.HostSource"/>) for the owner, and
/// writes the owner's text where the VFS said (<see cref="ProcRender.Material"/>). Both paths are a server's: a read is
/// only ever of the host's /proc, and a write only of a file of the proc folder of the VFS's memory directory, which
/// no guest can reach.
/// </summary>
internal sealed class ProcTextFiles(string? memoryDir)
{
    private const UnixFileMode ReadOnly = UnixFileMode.UserRead | UnixFileMode.GroupRead | UnixFileMode.OtherRead;

    private readonly string? _folder = memoryDir is null ? null : Path.Combine(Path.GetFullPath(memoryDir), "proc");

    /// <summary>The host's text of <paramref name="source"/>, or "" when its task is gone (the owner then says so).</summary>
    public static string ReadHost(string source)
    {
        if (!IsTaskFile(source))
            throw new ServerMistake(Contract.VfsName, "vfs/resolve", $"named {source} as a task's host text, which is not a file of a task's directory in the host's /proc");
        try
        {
            return PathBytes.Decode(File.ReadAllBytes(source));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return "";
        }
    }

    /// <summary>/proc/PID/...: a file of a task's directory by its number (not the supervisor's own "self"), with no
    /// step out of it.</summary>
    private static bool IsTaskFile(string path) =>
        path.Split('/') is ["", "proc", var pid, _, ..] parts && pid.Length > 0 && pid.All(char.IsAsciiDigit)
        && parts.Skip(1).All(p => p is not ("" or "." or ".."));

    /// <summary>
    /// Writes <paramref name="text"/> (bytes as paths carry them) to <paramref name="material"/>: a new file, named after
    /// the calling host thread <paramref name="hostTid"/> while it is written, renamed over the old one, so that a reader
    /// of the older text keeps it and two threads never write the same file. Gives the path the host is to open.
    /// </summary>
    public string Write(string material, string text, int hostTid)
    {
        string name = Path.GetFileName(material);
        if (_folder is null || Path.GetDirectoryName(material) != _folder || name is "" or "." or "..")
            throw new ServerMistake(Contract.VfsName, "vfs/resolve", $"named {material} for a procfs text, which is not a file of its memory directory's proc folder");
        string fresh = $"{material}.t{hostTid}";
        File.Delete(fresh); // left by a write that failed halfway
        using (var file = new FileStream(fresh, new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, UnixCreateMode = ReadOnly }))
            file.Write(PathBytes.Encode(text));
        File.Move(fresh, material, overwrite: true);
        return material;
    }
}
