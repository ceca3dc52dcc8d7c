using UmlMicro.Supervisor.Guest;
using UmlMicro.Supervisor.Servers;

namespace UmlMicro.Tests.Unit;

/// <summary>
/// The host files of a procfs Render that the supervisor touches (ProcTextFiles): the text goes only to a file of the
/// proc folder of the VFS's memory directory, as a new file, and the host's text is read only from a task's directory.
/// A VFS that names anything else made a mistake, which ends the guest with one line.
/// </summary>
public sealed class ProcTextFilesTests : IDisposable
{
    private readonly TempDir _memory = new();
    private readonly ProcTextFiles _files;

    public ProcTextFilesTests()
    {
        _memory.MakeDir("proc");
        _files = new ProcTextFiles(_memory.Path);
    }

    public void Dispose() => _memory.Dispose();

    [Fact]
    public void The_text_replaces_the_file_so_that_a_reader_of_the_older_text_keeps_it()
    {
        string material = _memory.File("proc/1_stat");
        Assert.Equal(material, _files.Write(material, "1 (sh) R\n", hostTid: 42));
        using var older = File.OpenRead(material);

        _files.Write(material, "1 (sh) S\n", hostTid: 42);

        Assert.Equal("1 (sh) R\n", new StreamReader(older).ReadToEnd());
        Assert.Equal("1 (sh) S\n", File.ReadAllText(material));
        Assert.Equal(["1_stat"], Directory.GetFiles(_memory.File("proc")).Select(Path.GetFileName));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.GroupRead | UnixFileMode.OtherRead, File.GetUnixFileMode(material));
    }

    [Theory]
    [InlineData("stat")] // the memory directory itself
    [InlineData("proc/../stat")]
    [InlineData("proc/sub/1_stat")]
    [InlineData("/etc/passwd")]
    public void A_file_outside_the_proc_folder_is_the_VFSs_mistake(string where)
    {
        string material = where.StartsWith('/') ? where : _memory.File(where);
        var mistake = Assert.Throws<ServerMistake>(() => _files.Write(material, "x", hostTid: 42));
        Assert.StartsWith("vfs server: vfs/resolve: ", mistake.Message);
        Assert.False(File.Exists(_memory.File("stat")));
    }

    [Fact]
    public void The_hosts_text_is_read_from_a_tasks_directory_only_and_is_empty_once_the_task_is_gone()
    {
        Assert.Contains($"({File.ReadAllText("/proc/self/comm").Trim()})", ProcTextFiles.ReadHost($"/proc/{Environment.ProcessId}/stat"));
        Assert.Equal("", ProcTextFiles.ReadHost($"/proc/{int.MaxValue}/stat"));
        foreach (var other in new[] { "/proc/self/environ", "/etc/passwd", $"/proc/{Environment.ProcessId}/../self/environ", "/proc/1" })
            Assert.Throws<ServerMistake>(() => ProcTextFiles.ReadHost(other));
    }
}
