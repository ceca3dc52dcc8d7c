namespace UmlMicro.Tests.Integration;

/// <summary>
/// The first wall (issue 13): what a guest could do to reach past the kernel's routing — an untraced child, a
/// guest seccomp filter that outranks the kernel's trap, the empty-path and ioctl forms that changed host files in
/// the read-only layer, pids carried in fcntl/ioctl/priority calls, AF_UNIX names in sendto/sendmsg — gives the guest
/// what Linux gives it and leaves the host alone. Each fixture (tests/fixtures) runs natively and under umlmicro;
/// the suite runs in every trap mode (tests/run.sh).
/// </summary>
public sealed class FirstWallTests(FixturePrograms fixtures) : IClassFixture<FixturePrograms>, IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void An_untraced_clone_is_traced_like_any_other_child()
    {
        var native = GuestRunner.Native(_dir.Path, fixtures["clone_untraced"]);
        Expect.ExitCode(0, native);
        Assert.Equal(
        [
            "clone(CLONE_UNTRACED|SIGCHLD): child sees its own pid yes, its parent yes, waited yes, exit 7",
            "clone3(CLONE_UNTRACED): child sees its own pid yes, its parent yes, waited yes, exit 7",
            "clone3 left the guest's clone_args alone: yes",
            "clone3(CLONE_UNTRACED, 512-byte struct): child sees its own pid yes, its parent yes, waited yes, exit 7",
            "clone(CLONE_UNTRACED|CLONE_SIGHAND): -1 Invalid argument",
        ], native.StdoutLines);

        // A child the kernel never attached sees its host pid (and its creator is told 0, so it runs the child's
        // code itself): the lines differ.
        var guest = GuestRunner.Run(_dir.Path, ["--max-procs", "2"], fixtures["clone_untraced"]);
        Expect.SameAsNative(native, guest);
    }

    [Fact]
    public void A_guest_seccomp_filter_never_outranks_the_kernels_trap()
    {
        var native = GuestRunner.Native(_dir.Path, fixtures["guest_seccomp"]);
        Expect.ExitCode(0, native);
        // Linux's answers: a RET_TRACE with no tracer is ENOSYS, whether the kernel would pass the call or route it.
        Assert.Equal(
        [
            "bad flags with a listener: -1 Invalid argument",
            "TSYNC with a listener: -1 Invalid argument",
            "empty program with a listener: -1 Invalid argument",
            "filter answering RET_TRACE: ok",
            "getuid: -1 Function not implemented",
            "chdir(\"/\"): -1 Function not implemented",
            "access(\"/\"): ok",
            "getpid: 1",
        ], native.StdoutLines);
        Expect.SameAsNative(native, GuestRunner.Run(_dir.Path, fixtures["guest_seccomp"]));

        // A listener would let a second thread run any call on the host unseen (SECCOMP_USER_NOTIF_FLAG_CONTINUE).
        Assert.Equal("filter with a listener: ok", GuestRunner.Native(_dir.Path, fixtures["guest_seccomp"], "--listener").StdoutLines[^1]);
        var guest = GuestRunner.Run(_dir.Path, fixtures["guest_seccomp"], "--listener");
        Expect.ExitCode(0, guest);
        Assert.Equal("filter with a listener: -1 Device or resource busy", guest.StdoutLines[^1]);
    }

    /// <summary>A directory of files with mode 0644 and times 100, and a subdirectory "sub", as empty_path.c expects.</summary>
    private static string EmptyPathTree(TempDir under, string name)
    {
        string dir = under.MakeDir(name);
        Directory.CreateDirectory(Path.Combine(dir, "sub"));
        foreach (var f in new[] { "chown", "chmod", "utimens", "utimens-empty", "futimes", "opath" })
        {
            string file = Path.Combine(dir, f);
            File.WriteAllText(file, "x\n");
            File.SetUnixFileMode(file, (UnixFileMode)0x1A4); // 0644
        }
        File.SetUnixFileMode(Path.Combine(dir, "sub"), (UnixFileMode)0x1ED); // 0755
        foreach (var e in Directory.GetFileSystemEntries(dir).Append(dir))
        {
            File.SetLastWriteTimeUtc(e, DateTime.UnixEpoch.AddSeconds(100));
            File.SetLastAccessTimeUtc(e, DateTime.UnixEpoch.AddSeconds(100));
        }
        return dir;
    }

    /// <summary>Name, mode, owner and mtime of every entry of <paramref name="dir"/> and of itself, as the host's stat says
    /// (not the atime, which any reader changes: a copy-up reads the file, as overlayfs's does).</summary>
    private static string Describe(string dir)
    {
        var r = GuestRunner.Native(dir, "/bin/sh", "-c", "stat -c '%n %a %u:%g %Y' . *");
        Expect.ExitCode(0, r);
        return r.Stdout;
    }

    [Fact]
    public void Empty_and_null_path_forms_change_the_guests_copy_and_never_the_host_file()
    {
        var native = GuestRunner.Native(_dir.Path, fixtures["empty_path"], EmptyPathTree(_dir, "native"));
        Expect.ExitCode(0, native);
        foreach (var line in new[]
                 {
                     "fchownat(fd, \"\", 1, 2, AT_EMPTY_PATH): 0",
                     "  chown: mode 644 uid 1 gid 2 mtime 100 atime 100",
                     "fchmodat2(fd, \"\", 0600, AT_EMPTY_PATH): 0",
                     "  chmod: mode 600 uid 0 gid 0 mtime 100 atime 100",
                     "  utimens: mode 644 uid 0 gid 0 mtime 2000 atime 1000",
                     "  utimens-empty: mode 644 uid 0 gid 0 mtime 2000 atime 5000",
                     "  futimes: mode 644 uid 0 gid 0 mtime 4000 atime 3000",
                     "fchmod(O_PATH fd, 0640): -1 Bad file descriptor",
                     "  opath: mode 604 uid 0 gid 0 mtime 100 atime 100",
                     "  sub: mode 750 uid 5 gid 5 mtime 2000",
                     "newfstatat(fd, NULL, AT_EMPTY_PATH): 0",
                 })
            Assert.Contains(line, native.StdoutLines);

        // The guest's tree lies in the read-only layer (the guest runs in another directory, the only one it may write).
        string lower = EmptyPathTree(_dir, "lower");
        string before = Describe(lower);
        var guest = GuestRunner.Run(_dir.MakeDir("cwd"), fixtures["empty_path"], lower);
        Expect.SameAsNative(native, guest);
        Assert.Equal(before, Describe(lower));
    }
}
