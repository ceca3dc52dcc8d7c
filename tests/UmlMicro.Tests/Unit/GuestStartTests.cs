using UmlMicro.Contracts.Servers;
using UmlMicro.Supervisor.Cli;

namespace UmlMicro.Tests.Unit;

/// <summary>The program guest pid 1 runs is found as a shell in the guest would find it: in the guest's PATH and namespace.</summary>
public sealed class GuestStartTests : IDisposable
{
    private readonly TempDir _root = new();
    private readonly TempDir _bound = new();

    public void Dispose()
    {
        _root.Dispose();
        _bound.Dispose();
    }

    private List<MountSpec> Mounts => [new("overlay", "/", _root.Path, false), new("bind", "/opt", _bound.Path, true)];

    private void Executable(string path) => File.SetUnixFileMode(path, (UnixFileMode)0b111_101_101);

    [Fact]
    public void Programs_are_looked_up_in_path_like_a_shell_does()
    {
        List<MountSpec> host = [new("overlay", "/", "/", false)];
        Assert.Equal("/bin/sh", GuestStart.LookupProgram("sh", "/nonexistent:/bin", "/", host));
        Assert.Null(GuestStart.LookupProgram("no-such-program-xyz", "/bin:/usr/bin", "/", host));
        Assert.Null(GuestStart.LookupProgram("/etc/passwd", "/bin", "/", host)); // exists, not executable
    }

    [Fact]
    public void Symlinks_are_followed_inside_the_guests_root_and_binds()
    {
        Executable(_root.Write("usr/bin/busybox", "#!/x\n"));
        Directory.CreateSymbolicLink(_root.File("bin"), "usr/bin");
        File.CreateSymbolicLink(_root.File("usr/bin/sh"), "/bin/busybox"); // absolute: the guest's /bin, not the host's
        File.CreateSymbolicLink(_root.File("usr/bin/up"), "../../../../../../../bin/busybox"); // .. stops at the guest's root
        Executable(_bound.Write("tool", "#!/x\n"));
        File.CreateSymbolicLink(_root.File("usr/bin/tool"), "/opt/tool");
        File.CreateSymbolicLink(_root.File("usr/bin/hostonly"), "/usr/bin/env"); // the host has it, the guest does not

        Assert.Equal("/bin/sh", GuestStart.LookupProgram("sh", "/bin", "/", Mounts));
        Assert.Equal("/usr/bin/up", GuestStart.LookupProgram("up", "/usr/bin", "/", Mounts));
        Assert.Equal("/usr/bin/tool", GuestStart.LookupProgram("tool", "/usr/bin", "/", Mounts));
        Assert.Null(GuestStart.LookupProgram("hostonly", "/usr/bin", "/", Mounts));
        Assert.Equal("/usr/bin/busybox", GuestStart.LookupProgram("./busybox", "", "/usr/bin", Mounts)); // from the cwd
    }

    [Fact]
    public void A_symlink_loop_finds_nothing()
    {
        File.CreateSymbolicLink(_root.File("a"), "/b");
        File.CreateSymbolicLink(_root.File("b"), "a");
        Assert.Null(GuestStart.LookupProgram("/a", "", "/", Mounts));
    }

    [Fact]
    public void Settings_replace_or_add_environment_variables() =>
        Assert.Equal(["PATH=/x", "HOME=/root", "A=b=c"], GuestStart.WithSettings(["PATH=/usr/bin", "HOME=/root"], ["PATH=/x", "A=b=c"]));

    [Fact]
    public void A_working_directory_is_the_guests_even_through_dot_dot_and_symlinks()
    {
        _root.MakeDir("srv/app");
        Directory.CreateSymbolicLink(_root.File("app"), "/srv/app");
        var vfs = new VfsSection { Root = _root.Path, Isolate = true };
        foreach (var (dir, guest) in new[] { ("/app", "/app"), ("../../../srv/app", "/srv/app"), ("srv/app", "/srv/app") })
        {
            using var ns = GuestNamespace.Create(vfs, "/", dir);
            Assert.Equal((guest, _root.File("srv/app")), (ns.InitialCwd, ns.HostCwd));
        }
        Assert.Throws<UsageError>(() => GuestNamespace.Create(vfs, "/", "/etc")); // the host has one; the guest does not
    }
}
