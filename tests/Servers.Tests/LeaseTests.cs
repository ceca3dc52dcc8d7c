using UmlMicro.Contracts.Linux;
using UmlMicro.Contracts.Servers;
using UmlMicro.Servers.Vfs;

namespace UmlMicro.ServersTests;

/// <summary>
/// The VFS's leases (PathResolution.Lease): which answers it grants as leases, and that every change of its namespace
/// moves the lease epoch first. The epoch is an 8-byte temp file here (the supervisor gives a memfd); the test reads
/// it as the supervisor does, from the file.
/// </summary>
public sealed class LeaseTests : IDisposable
{
    private const int O_RDONLY = 0;
    private readonly VfsHarness _vfs = new();
    private readonly string _epochFile;
    private VfsServer? _server;

    public LeaseTests()
    {
        _epochFile = Path.Combine(_vfs.Base, "epoch");
        File.WriteAllBytes(_epochFile, new byte[8]);
    }

    public void Dispose()
    {
        _server?.Dispose();
        _vfs.Dispose();
    }

    private long Epoch => BitConverter.ToInt64(File.ReadAllBytes(_epochFile));

    private async Task<VfsServer> Server(bool grantLeases = true)
    {
        if (_server is not null) return _server;
        _server = new VfsServer(grantLeases);
        await _server.ConfigureAsync(_vfs.Config() with { LeaseEpoch = _epochFile });
        return _server;
    }

    private async Task<PathResolution> Resolve(string path, PathOp op = PathOp.Stat, int flags = 0, bool follow = true, string? dirHost = null, int vpid = 1) =>
        await (await Server()).ResolveAsync(new PathRequest(vpid, vpid, new PathArg(path, dirHost), op, follow, Credentials.Root, flags));

    private async Task<int> Change(NameOp op, string path, string? newPath = null, string? target = null) =>
        await (await Server()).ChangeAsync(new NameChange(1, op, new PathArg(path), Credentials.Root, newPath is null ? null : new PathArg(newPath), target));

    private void AssertLeased(PathResolution r, string what, int errno = 0)
    {
        Assert.True(r.Errno == errno, $"{what}: errno {r.Errno}");
        Assert.True(r.Lease != 0 && r.Lease == Epoch, $"{what}: lease {r.Lease}, epoch {Epoch}");
        Assert.True(r.LeaseMs > 0, $"{what}: lease for {r.LeaseMs} ms");
    }

    private static void AssertNotLeased(PathResolution r, string what) =>
        Assert.True(r.Lease == 0, $"{what} was granted as a lease: {r}");

    [Fact]
    public async Task A_lookup_of_an_existing_lower_file_or_directory_is_granted_at_the_current_epoch()
    {
        _vfs.Lower("etc/conf", "x");
        _vfs.LowerLink("etc/link", "conf");

        await Server();
        Assert.NotEqual(0, Epoch); // a server that grants leases starts by moving the epoch off 0

        AssertLeased(await Resolve("/etc/conf"), "stat /etc/conf");
        AssertLeased(await Resolve("/etc/conf", PathOp.Open, O_RDONLY), "open /etc/conf O_RDONLY");
        AssertLeased(await Resolve("/etc/conf", PathOp.Access, 4), "access /etc/conf R_OK");
        AssertLeased(await Resolve("/etc/link", PathOp.Readlink, follow: false), "readlink /etc/link");
        AssertLeased(await Resolve("/etc/link"), "stat through /etc/link");
        AssertLeased(await Resolve("/etc", PathOp.Chdir), "chdir /etc");
        AssertLeased(await Resolve("conf", dirHost: _vfs.LowerPath("etc")), "stat conf under a dirfd of /etc");
        var r = await Resolve("/etc/conf");
        Assert.Equal(_vfs.LowerPath("etc/conf"), r.HostPath ?? "/etc/conf");
    }

    [Fact]
    public async Task A_name_missing_from_a_directory_is_leased_but_not_one_below_a_missing_directory_and_a_create_says_it_makes_a_name()
    {
        _vfs.Lower("etc/conf", "x");

        var missing = await Resolve("/etc/missing");
        Assert.Equal(Errno.ENOENT, missing.Errno);
        AssertLeased(missing, "a name missing from /etc", Errno.ENOENT);
        AssertLeased(await Resolve("/etc/missing", PathOp.Open, O_RDONLY), "open of a missing name", Errno.ENOENT);
        AssertLeased(await Resolve("/etc/missing", PathOp.Exec), "exec of a missing name", Errno.ENOENT);
        var deeper = await Resolve("/nodir/missing");
        Assert.Equal(Errno.ENOENT, deeper.Errno);
        AssertNotLeased(deeper, "a name below a missing directory");
        AssertNotLeased(await Resolve("/proc/99999"), "a missing name in /proc");

        long before = Epoch;
        var create = await Resolve("/etc/missing", PathOp.Open, LinuxFlags.O_WRONLY | LinuxFlags.O_CREAT);
        Assert.True(create.MakesName, create.ToString());
        Assert.NotEqual(before, Epoch);
        // O_CREAT of a name that exists makes none, and changes no name when the file is the guest's own already.
        File.WriteAllText(create.HostPath!, "");
        before = Epoch;
        var again = await Resolve("/etc/missing", PathOp.Open, LinuxFlags.O_WRONLY | LinuxFlags.O_CREAT);
        Assert.False(again.MakesName, again.ToString());
        Assert.Equal(before, Epoch);
    }

    [Fact]
    public async Task Proc_dev_an_exec_and_a_write_open_are_not_leased()
    {
        var exe = _vfs.Lower("bin/tool", "\x7f" + "ELF not really");
        File.SetUnixFileMode(exe, (UnixFileMode)0x1ED); // 0755
        _vfs.Lower("etc/conf", "x");

        AssertNotLeased(await Resolve("/proc"), "/proc");
        AssertNotLeased(await Resolve("/proc/meminfo"), "/proc/meminfo");
        AssertNotLeased(await Resolve("/dev/null"), "/dev/null");
        AssertNotLeased(await Resolve("/bin/tool", PathOp.Exec), "exec /bin/tool");
        AssertNotLeased(await Resolve("/etc/conf", PathOp.Open, LinuxFlags.O_WRONLY), "open /etc/conf O_WRONLY");
        AssertNotLeased(await Resolve("/etc/conf", PathOp.Open, O_RDONLY | LinuxFlags.O_CREAT), "open /etc/conf O_CREAT");
        AssertNotLeased(await Resolve("/etc/conf", PathOp.Modify), "chmod /etc/conf");
        AssertNotLeased(await Resolve("/etc/new", PathOp.Create), "mkdir /etc/new");
    }

    [Fact]
    public async Task An_answer_reached_through_proc_self_is_not_leased_it_depends_on_who_asks()
    {
        _vfs.Lower("etc/conf", "x");
        var processes = new[] { new ProcPid(1, Environment.ProcessId, [new ProcTid(1, Environment.ProcessId)]) };
        var request = new PathRequest(1, 1, new PathArg("/proc/self/cwd/etc/conf"), PathOp.Stat, true, Credentials.Root, Processes: processes);

        var r = await (await Server()).ResolveAsync(request);

        Assert.True(r.Errno == 0 && !r.NeedProcesses, $"/proc/self/cwd/etc/conf: {r}");
        AssertNotLeased(r, "/proc/self/cwd/etc/conf");
    }

    [Fact]
    public async Task A_procfs_render_asked_with_the_processes_is_leased_it_names_the_task_and_not_its_text()
    {
        var processes = new[] { new ProcPid(1, Environment.ProcessId, [new ProcTid(1, Environment.ProcessId)]) };
        var stat = new PathRequest(1, 1, new PathArg("/proc/self/stat"), PathOp.Open, true, Credentials.Root, O_RDONLY, processes);
        var server = await Server();

        var r = await server.ResolveAsync(stat);

        Assert.True(r.Render is { HostSource: not null, Material: not null } && r.Render.Request.HostText == "", $"/proc/self/stat: {r}");
        AssertLeased(r, "open /proc/self/stat O_RDONLY");
        AssertNotLeased(await server.ResolveAsync(stat with { Processes = null }), "/proc/self/stat without the processes");
        AssertNotLeased(await server.ResolveAsync(stat with { OpenFlags = 2 }), "open /proc/self/stat O_RDWR");
    }

    [Fact]
    public async Task Every_change_moves_the_epoch_so_that_no_lease_granted_before_it_holds()
    {
        _vfs.Lower("etc/a", "a");
        _vfs.Lower("etc/b", "b");
        _vfs.LowerDir("etc/d");

        long Granted(PathResolution r)
        {
            AssertLeased(r, "a lookup");
            return r.Lease;
        }

        long before = Granted(await Resolve("/etc/a"));
        Assert.Equal(0, await Change(NameOp.Rename, "/etc/a", "/etc/b"));
        Assert.NotEqual(before, Epoch);

        before = Granted(await Resolve("/etc/b"));
        Assert.Equal(0, await Change(NameOp.Unlink, "/etc/b"));
        Assert.NotEqual(before, Epoch);
        Assert.Equal(Errno.ENOENT, (await Resolve("/etc/b")).Errno);

        before = Granted(await Resolve("/etc/d"));
        Assert.Equal(0, await Change(NameOp.Rmdir, "/etc/d"));
        Assert.NotEqual(before, Epoch);

        // mkdir over the whiteout: the create moves the epoch when the VFS answers it (the host makes the directory after)
        before = Epoch;
        var made = await Resolve("/etc/d", PathOp.Create, follow: false);
        Assert.Equal(0, made.Errno);
        Assert.NotEqual(before, Epoch);
        Directory.CreateDirectory(made.HostPath ?? "/etc/d");
        before = Epoch;
        if (made.CommitOnSuccess) await (await Server()).CreatedAsync(made.GuestPath!);
        Assert.True(!made.CommitOnSuccess || Epoch != before, "vfs/created left the epoch as it was");
        AssertLeased(await Resolve("/etc/d"), "the new /etc/d");

        before = Granted(await Resolve("/etc/d"));
        Assert.Equal(0, await Change(NameOp.Symlink, "/etc/s", target: "d"));
        Assert.NotEqual(before, Epoch);

        // a write open copies up: what the name answers changes, so it is a change too
        _vfs.Lower("etc/c", "c");
        var lowerAnswer = await Resolve("/etc/c", PathOp.Open, O_RDONLY);
        before = Granted(lowerAnswer);
        var written = await Resolve("/etc/c", PathOp.Open, LinuxFlags.O_WRONLY);
        Assert.Equal(0, written.Errno);
        Assert.NotEqual(before, Epoch);
        var upperAnswer = await Resolve("/etc/c", PathOp.Open, O_RDONLY);
        AssertLeased(upperAnswer, "the copied-up /etc/c");
        Assert.NotEqual(lowerAnswer.HostPath ?? "/etc/c", upperAnswer.HostPath ?? "/etc/c");
    }

    [Fact]
    public async Task Lookups_leave_the_epoch_alone()
    {
        _vfs.Lower("etc/a", "a");
        await Server();
        long start = Epoch;

        for (int i = 0; i < 3; i++)
        {
            await Resolve("/etc/a");
            await Resolve("/etc/a", PathOp.Open, O_RDONLY);
            await Resolve("/etc/missing");
        }
        Assert.Equal(start, Epoch);
    }

    [Fact]
    public async Task A_VFS_started_with_no_leases_grants_none_and_leaves_the_epoch_alone()
    {
        _vfs.Lower("etc/conf", "x");
        await Server(grantLeases: false);

        var r = await Resolve("/etc/conf");
        Assert.Equal(0, r.Errno);
        AssertNotLeased(r, "stat /etc/conf from a --no-leases VFS");
        Assert.Equal(0, await Change(NameOp.Unlink, "/etc/conf"));
        Assert.Equal(0, Epoch);
    }

    [Fact]
    public async Task A_restarted_VFS_moves_the_epoch_past_every_lease_its_predecessor_granted()
    {
        _vfs.Lower("etc/conf", "x");
        var granted = await Resolve("/etc/conf");
        AssertLeased(granted, "stat /etc/conf");

        using var second = new VfsServer();
        await second.ConfigureAsync(_vfs.Config() with { LeaseEpoch = _epochFile });

        Assert.NotEqual(granted.Lease, Epoch);
    }
}
