namespace UmlMicro.Tests.Integration;

/// <summary>
/// Extended attributes the host refuses a guest (issue 17): trusted.* and security.* (but security.capability) need
/// CAP_SYS_ADMIN in the host's initial user namespace, which the second wall withholds. The VFS keeps them itself, per
/// inode, and a guest's root sets, reads, lists and removes them as Linux's root does (tests/fixtures/xattrs.c): on a
/// file, a directory and a symlink itself, through fds, with Linux's errnos, and a user without capabilities refused.
/// </summary>
public sealed class XattrTests(FixturePrograms fixtures) : IClassFixture<FixturePrograms>, IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private string NewDir(string name) => Directory.CreateDirectory(Path.Combine(_dir.Path, name)).FullName;

    /// <summary>What the fixture prints natively as root with every capability (the test machine's root), or, run as
    /// another user (who cannot set these names on the host), the lines Linux's root prints for the names it keeps.</summary>
    private string[] Native()
    {
        if (!Environment.IsPrivilegedProcess) return [];
        string dir = NewDir("native");
        var native = GuestRunner.Native(dir, fixtures["xattrs"], "run", dir);
        Expect.ExitCode(0, native);
        return native.StdoutLines;
    }

    private static void AsLinuxRoot(string[] native, RunResult guest)
    {
        Expect.ExitCode(0, guest);
        string[] rootLines = ["file create -> 0", "file get -> 9 [value-one]", "file list -> 42 [security.empty|security.kept|trusted.kept|]",
            "link create -> 0", "dir set trusted -> 0"];
        if (native.Length > 0) Assert.Equal(native, guest.StdoutLines);
        else Assert.All(rootLines, l => Assert.Contains(l, guest.StdoutLines));
    }

    [Theory]
    [InlineData("seccomp")]
    [InlineData("tt")]
    [InlineData("sysemu")]
    public void A_guest_root_keeps_trusted_and_security_attributes_as_linux_root_does(string mode)
    {
        var native = Native();
        string dir = NewDir(mode);

        var guest = GuestRunner.Run(dir, ["--mode", mode], fixtures["xattrs"], "run", dir);

        AsLinuxRoot(native, guest);
        // The host's files never got them, under any name: they are the kernel's.
        string host = ListHost(dir);
        Assert.DoesNotContain("security.", host);
        Assert.DoesNotContain("trusted.", host);
    }

    [Fact]
    public void In_the_copy_on_write_layer_too()
    {
        var native = Native();
        string lower = NewDir("lower");

        var guest = GuestRunner.Run(lower, ["--isolate"], fixtures["xattrs"], "run", lower);

        AsLinuxRoot(native, guest);
        Assert.Empty(Directory.GetFileSystemEntries(lower));
    }

    [Fact]
    public void They_survive_a_restart_of_the_vfs()
    {
        string dir = NewDir("restart");
        File.WriteAllText(Path.Combine(dir, "f"), "x");
        const string py = "python3 -c 'import os, sys; print(os.getxattr(\"f\", sys.argv[1]).decode())'";
        using var run = GuestRunner.Start(new RunSpec(dir, "/bin/sh", ["-c",
            "python3 -c 'import os; os.setxattr(\"f\", \"security.kept\", b\"before\"); os.setxattr(\"f\", \"trusted.kept\", b\"t\")'"
            + $" && echo ready && read line && {py} security.kept && {py} trusted.kept"]) { KeepStdinOpen = true });
        run.WaitForStdout("ready\n", TimeSpan.FromSeconds(60));

        int killed = KernelServers.Kill(run, KernelServers.Vfs);
        run.StandardInput.WriteLine("go");
        run.StandardInput.Close();
        var r = run.WaitForExit(TimeSpan.FromSeconds(60));

        Expect.Success("ready\nbefore\nt\n", r);
        Assert.False(HostProcesses.IsAlive(killed), $"the killed VFS {killed} is still alive");
    }

    /// <summary>The names of the host's extended attributes of every entry of <paramref name="dir"/> (user.* only
    /// can be there: the host refuses the others).</summary>
    private static string ListHost(string dir)
    {
        var p = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("python3",
            ["-c", "import os, sys; d = sys.argv[1]; print([(n, os.listxattr(os.path.join(d, n), follow_symlinks=False)) for n in sorted(os.listdir(d))])", dir])
        { RedirectStandardOutput = true })!;
        string text = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        Assert.Equal(0, p.ExitCode);
        return text;
    }
}
