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

    [Fact]
    public void Inode_attribute_ioctls_on_a_read_only_layer_file_change_the_guests_copy()
    {
        string Files(string name)
        {
            string dir = _dir.MakeDir(name);
            File.WriteAllText(Path.Combine(dir, "a"), "a\n");
            File.WriteAllText(Path.Combine(dir, "b"), "b\n");
            return dir;
        }
        string Attributes(string dir)
        {
            var r = GuestRunner.Native(dir, "lsattr", "a", "b");
            Expect.ExitCode(0, r);
            return r.Stdout;
        }

        string nat = Files("native");
        var native = GuestRunner.Native(_dir.Path, fixtures["inode_ioctl"], Path.Combine(nat, "a"), Path.Combine(nat, "b"));
        Expect.ExitCode(0, native);
        Assert.Equal(
        [
            "FS_IOC_GETFLAGS: ok",
            "noatime before: no",
            "FS_IOC_SETFLAGS(+noatime) on a read-only fd: ok",
            "noatime after, through the path: yes",
            "FS_IOC_SETFLAGS(bad pointer): -1 Bad address",
            "FS_IOC_SETFLAGS on an O_PATH fd: -1 Bad file descriptor",
            "FS_IOC_FSGETXATTR: ok",
            "FS_IOC_FSSETXATTR(+nodump) on a read-only fd: ok",
            "nodump after, through the path: yes",
        ], native.StdoutLines);
        Assert.NotEqual(Attributes(Files("pristine")), Attributes(nat));

        string lower = Files("lower");
        string before = Attributes(lower);
        var cwd = _dir.MakeDir("cwd");
        Expect.SameAsNative(native, GuestRunner.Run(cwd, fixtures["inode_ioctl"], Path.Combine(lower, "a"), Path.Combine(lower, "b")));
        // A filesystem-specific inode ioctl is not an overlay file's (ENOTTY); natively it works.
        Expect.Stdout("FS_IOC_SETVERSION: ok\n", GuestRunner.Native(_dir.Path, fixtures["inode_ioctl"], Path.Combine(nat, "a"), "-", "--fs-specific"));
        Expect.Success("FS_IOC_SETVERSION: -1 Inappropriate ioctl for device\n",
            GuestRunner.Run(cwd, fixtures["inode_ioctl"], Path.Combine(lower, "a"), "-", "--fs-specific"));
        Assert.Equal(before, Attributes(lower));
    }

    [Fact]
    public void Pids_in_fd_owners_and_locks_are_the_guests_both_ways()
    {
        var native = GuestRunner.Native(_dir.Path, fixtures["pid_channels"]);
        Expect.ExitCode(0, native);
        Assert.DoesNotContain(native.StdoutLines, l => l.EndsWith(": no", StringComparison.Ordinal));
        Assert.Contains("SIGIO reached its owner: yes", native.StdoutLines);
        Assert.Contains("F_GETLK names the child: yes", native.StdoutLines);
        Assert.Contains("F_SETOWN(no such pid): -1 No such process", native.StdoutLines);
        Expect.SameAsNative(native, GuestRunner.Run(_dir.Path, fixtures["pid_channels"]));

        // A host pid names a host process natively; in the guest it names nothing, and the owner stays unset.
        string self = Environment.ProcessId.ToString();
        Assert.Equal("owner after all that is nobody: no", GuestRunner.Native(_dir.Path, fixtures["pid_channels"], "--host-pid", self).StdoutLines[^1]);
        Expect.Success(
            "F_SETOWN(host pid): -1 No such process\nF_SETOWN(-host pid): -1 No such process\n" +
            "F_SETOWN_EX(F_OWNER_PID, host pid): -1 No such process\nFIOSETOWN(host pid): -1 No such process\n" +
            "SIOCSPGRP(host pid): -1 No such process\nowner after all that is nobody: yes\n",
            GuestRunner.Run(_dir.Path, fixtures["pid_channels"], "--host-pid", self));
    }

    [Fact]
    public void Priorities_of_a_user_reach_only_the_guests_processes()
    {
        // A host process of the same user, which PRIO_USER and IOPRIO_WHO_USER would reach on the host.
        using var bystander = GuestRunner.StartNative(new RunSpec(_dir.Path, "sleep", ["60"]));
        string Priorities() =>
            File.ReadAllText($"/proc/{bystander.Pid}/stat").Split(' ')[18] + " " +
            GuestRunner.Native(_dir.Path, "ionice", "-p", bystander.Pid.ToString()).Stdout;
        string before = Priorities();

        var r = GuestRunner.Run(_dir.Path, fixtures["pid_channels"], "--prio-user");
        Expect.Success(
            "setpriority(PRIO_USER, 0, 7): ok\ngetpriority(PRIO_USER, uid): 7 \ngetpriority(PRIO_PROCESS, 0): 7\n" +
            "getpriority(PRIO_USER, 4242): -1 No such process\nsetpriority(PRIO_USER, 4242, 3): -1 No such process\n" +
            "ioprio_set(IOPRIO_WHO_USER, uid, BE/6): ok\nioprio_get(IOPRIO_WHO_USER, uid): class 2 level 6\n" +
            "ioprio_get(IOPRIO_WHO_PROCESS, 0): class 2 level 6\n", r);
        Assert.Equal(before, Priorities());
    }

    [Fact]
    public void Datagram_destinations_are_resolved_like_connect()
    {
        string rx = _dir.MakeDir("rx");
        var native = GuestRunner.Native(_dir.Path, fixtures["unix_send"], rx);
        Expect.ExitCode(0, native);
        foreach (var line in new[]
                 {
                     "received: one", "received: two", "received: three", "received: four", "sendmmsg msg_len: 5 4",
                     "sendto: -1 No such file or directory", "sendmmsg: -1 No such file or directory",
                     "sendto(connected stream, a name): -1 Transport endpoint is already connected",
                 })
            Assert.Contains(line, native.StdoutLines);
        // The receiver's name is made in the guest's layer, and the sends find it there.
        Expect.SameAsNative(native, GuestRunner.Run(_dir.MakeDir("cwd"), fixtures["unix_send"], rx));
        Assert.Empty(Directory.GetFileSystemEntries(rx));

        // A host socket the guest's namespace does not show (a --tmpfs over its directory) is a name that does not exist.
        string hidden = _dir.MakeDir("hidden"), name = Path.Combine(hidden, "host.sock");
        using var host = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Dgram,
            System.Net.Sockets.ProtocolType.Unspecified);
        host.Bind(new System.Net.Sockets.UnixDomainSocketEndPoint(name));
        var guest = GuestRunner.Run(_dir.Path, ["--tmpfs", hidden], fixtures["unix_send"], "--to", name);
        Expect.Success("sendto: -1 No such file or directory\nsendmsg: -1 No such file or directory\n" +
                       "sendmsg left the guest's msghdr alone: yes\nsendmmsg: -1 No such file or directory\n", guest);
        Assert.Equal(0, host.Available);
        // Natively the same calls reach it.
        Assert.Contains("sendto: 3", GuestRunner.Native(_dir.Path, fixtures["unix_send"], "--to", name).StdoutLines);
        Assert.True(host.Available > 0);
    }
}
