using UmlMicro.Contracts.Linux;
using UmlMicro.Contracts.Servers;

namespace UmlMicro.ContractTests;

/// <summary>
/// The VFS contract (version 3) against the real server process: a namespace configured with an overlay root
/// (the host's / or a temp tree, read-only under a private upper layer), procfs, devfs, bind and tmpfs mounts;
/// each test makes its own state and memory directories and deletes them.
/// </summary>
[Trait(Kit.Kind, Kit.Semantics), Trait(Kit.Server, "vfs")]
public sealed class VfsContractTests() : ServerContractTest<IVfsServer>("Vfs"), IDisposable
{
    private const int NameMax = 255;
    private readonly string _temp = Directory.CreateTempSubdirectory("umlmicro-vfs-contract-").FullName;

    private string StateDir => Directory.CreateDirectory(Path.Combine(_temp, "state")).FullName;
    private string MemoryDir => Directory.CreateDirectory(Path.Combine(_temp, "memory")).FullName;

    /// <summary>The default namespace: the host's / under a copy-on-write layer, /proc and /dev, then <paramref name="more"/>.</summary>
    private VfsConfig HostRoot(string cwd = "/", params MountSpec[] more) => Config("/", cwd, more);

    private VfsConfig Config(string root, string cwd, params MountSpec[] more) => new(
        [new("overlay", "/", root, false), new("proc", "/proc", "", false), new("dev", "/dev", "", false), .. more],
        cwd, StateDir, MemoryDir);

    [Fact]
    public async Task Hello_names_the_vfs_contract()
    {
        var hello = await Proxy.HelloAsync();

        Assert.Equal(Contract.VfsName, hello.Name);
        Assert.Equal(Contract.VfsVersion, hello.ContractVersion);
        Assert.Equal(Server.Pid, hello.ServerPid);
    }

    [Fact]
    public async Task Under_the_host_root_a_plain_path_to_an_unchanged_file_is_not_rewritten()
    {
        await Proxy.ConfigureAsync(HostRoot());

        Assert.Equal(new PathResolution(0, null, "/etc/passwd"), await Resolve(1, "/etc/passwd"));
        Assert.Equal(new PathResolution(0, null, "/etc"), await Resolve(1, "/etc/"));
        var dotted = await Resolve(1, "/usr/../etc");
        Assert.Equal("/etc", dotted.GuestPath);
        Assert.Equal("/etc", dotted.HostPath ?? "/etc");
    }

    [Fact]
    public async Task A_file_created_under_the_host_root_goes_to_the_private_layer_not_the_host()
    {
        await Proxy.ConfigureAsync(HostRoot());
        const string probe = "/etc/umlmicro-contract-probe";

        var create = await Resolve(1, probe, PathOp.Open, LinuxFlags.O_WRONLY | LinuxFlags.O_CREAT);
        var write = await Resolve(1, "/etc/passwd", PathOp.Open, LinuxFlags.O_WRONLY);

        Assert.Equal(0, create.Errno);
        Assert.Equal(probe, create.GuestPath);
        Assert.StartsWith(StateDir + "/", create.HostPath);
        Assert.False(File.Exists(probe));
        Assert.Equal(0, write.Errno);
        Assert.StartsWith(StateDir + "/", write.HostPath); // copied up
        Assert.Equal(File.ReadAllText("/etc/passwd"), File.ReadAllText(write.HostPath!));
    }

    [Fact]
    public async Task The_kernels_own_state_is_not_in_the_guests_namespace()
    {
        await Proxy.ConfigureAsync(HostRoot());
        await Resolve(1, "/etc/x", PathOp.Open, LinuxFlags.O_WRONLY | LinuxFlags.O_CREAT); // makes the upper layer

        Assert.Equal(Errno.ENOENT, (await Resolve(1, StateDir)).Errno);
        Assert.Equal(Errno.ENOENT, (await Resolve(1, MemoryDir)).Errno);
        var listing = await Resolve(1, _temp, PathOp.Open, LinuxFlags.O_DIRECTORY);
        Assert.Equal(0, listing.Errno);
        Assert.Empty(Directory.GetFileSystemEntries(listing.HostPath ?? _temp));
    }

    [Fact]
    public async Task An_unlink_under_the_host_root_hides_the_file_and_leaves_the_host_alone()
    {
        string dir = Directory.CreateDirectory(Path.Combine(_temp, "lower")).FullName;
        File.WriteAllText(Path.Combine(dir, "a"), "a");
        File.WriteAllText(Path.Combine(dir, "b"), "b");
        await Proxy.ConfigureAsync(HostRoot());

        Assert.Equal(0, await Proxy.ChangeAsync(new NameChange(1, NameOp.Unlink, new PathArg(dir + "/a"), Credentials.Root)));
        Assert.Equal(0, await Proxy.ChangeAsync(new NameChange(1, NameOp.Rename, new PathArg(dir + "/b"), Credentials.Root, new PathArg(dir + "/c"))));

        Assert.True(File.Exists(Path.Combine(dir, "a")));
        Assert.True(File.Exists(Path.Combine(dir, "b")));
        Assert.Equal(Errno.ENOENT, (await Resolve(1, dir + "/a")).Errno);
        Assert.Equal(Errno.ENOENT, (await Resolve(1, dir + "/b")).Errno);
        var listing = await Resolve(1, dir, PathOp.Open, LinuxFlags.O_DIRECTORY);
        Assert.Equal(["c"], Directory.GetFileSystemEntries(listing.HostPath!).Select(Path.GetFileName));
        Assert.Equal("b", File.ReadAllText((await Resolve(1, dir + "/c", PathOp.Open)).HostPath!));
    }

    [Fact]
    public async Task The_kernels_own_files_are_handed_out_by_host_path_and_read_only()
    {
        await Proxy.ConfigureAsync(HostRoot() with { Release = "6.1-test", Hostname = "guestbox" });

        var release = await Resolve(1, "/proc/sys/kernel/osrelease", PathOp.Open);
        Assert.Equal(0, release.Errno);
        Assert.Equal("6.1-test\n", File.ReadAllText(release.HostPath!));
        var host = await Resolve(1, "/proc/sys/../sys/kernel/hostname");
        Assert.Equal("guestbox\n", File.ReadAllText(host.HostPath!));
        var write = await Resolve(1, "/proc/sys/kernel/hostname", PathOp.Open, LinuxFlags.O_WRONLY);
        Assert.Equal(Errno.EACCES, write.Errno);
        Assert.Null((await Resolve(1, "/proc/sys/kernel/pid_max")).HostPath);
    }

    [Fact]
    public async Task The_guests_cpus_and_memory_are_what_cpuinfo_sysfs_and_meminfo_count()
    {
        await Proxy.ConfigureAsync(HostRoot() with { Cpus = 3, MemoryLimit = 256L << 20 });

        var online = await Resolve(1, "/sys/devices/system/cpu/online", PathOp.Open);
        Assert.Equal("0-2\n", File.ReadAllText(online.HostPath!));
        var cpuinfo = await Resolve(1, "/proc/cpuinfo", PathOp.Open);
        var processors = File.ReadAllLines(cpuinfo.HostPath!).Where(l => l.StartsWith("processor", StringComparison.Ordinal)).ToArray();
        Assert.Equal(["processor\t: 0", "processor\t: 1", "processor\t: 2"], processors);
        var meminfo = await Resolve(1, "/proc/meminfo", PathOp.Open);
        var total = File.ReadAllLines(meminfo.HostPath!).First(l => l.StartsWith("MemTotal:", StringComparison.Ordinal));
        Assert.Equal("262144", total.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]);
    }

    [Fact]
    public async Task A_relative_path_is_resolved_against_the_cwd_set_by_host_path()
    {
        await Proxy.ConfigureAsync(HostRoot("/usr"));
        Assert.Equal("/usr/notes", (await Resolve(1, "notes", PathOp.Open, LinuxFlags.O_CREAT | LinuxFlags.O_WRONLY)).GuestPath);

        await Proxy.SetCwdAsync(1, "/usr/bin");

        Assert.Equal(new CwdResult(0, "/usr/bin"), await Proxy.GetCwdAsync(1));
        Assert.Equal("/usr/bin/ls", (await Resolve(1, "./ls")).GuestPath);
        Assert.Equal("/usr", (await Resolve(1, "..")).GuestPath);
    }

    [Fact]
    public async Task A_path_is_resolved_against_the_directory_its_dirfd_holds()
    {
        await Proxy.ConfigureAsync(HostRoot());

        var r = await Proxy.ResolveAsync(new PathRequest(1, 1, new PathArg("passwd", "/etc"), PathOp.Stat, true, Credentials.Root));
        var absolute = await Proxy.ResolveAsync(new PathRequest(1, 1, new PathArg("/usr", "/etc"), PathOp.Stat, true, Credentials.Root));

        Assert.Equal(new PathResolution(0, null, "/etc/passwd"), r);
        Assert.Equal(new PathResolution(0, null, "/usr"), absolute);
    }

    [Fact]
    public async Task Dot_dot_at_the_root_stays_at_the_root()
    {
        await Proxy.ConfigureAsync(HostRoot());

        Assert.Equal("/etc/hosts", (await Resolve(1, "/../../etc/./hosts")).GuestPath);
        Assert.Equal("/tmp", (await Resolve(1, "../../tmp")).GuestPath);
    }

    [Fact]
    public async Task Paths_fail_as_Linux_fails_them()
    {
        await Proxy.ConfigureAsync(HostRoot());
        string longName = new('n', NameMax + 1);
        string longPath = "/" + string.Join('/', Enumerable.Repeat(new string('d', 99), 41)); // 4100 bytes

        Assert.Equal(Errno.ENOENT, (await Resolve(1, "")).Errno);
        Assert.Equal(Errno.ENAMETOOLONG, (await Resolve(1, "/tmp/" + longName)).Errno);
        Assert.Equal(Errno.ENAMETOOLONG, (await Resolve(1, longPath)).Errno);
        Assert.Equal(Errno.ENAMETOOLONG, (await Resolve(1, longPath[..LinuxFlags.PATH_MAX])).Errno);
        Assert.Equal(Errno.ENOENT, (await Resolve(1, longPath[..(LinuxFlags.PATH_MAX - 1)])).Errno);
        Assert.Equal(Errno.ENOENT, (await Resolve(1, "/tmp/" + longName[..^1])).Errno);
        Assert.Equal(Errno.ENOTDIR, (await Resolve(1, "/etc/passwd/x")).Errno);
    }

    [Fact]
    public async Task A_fresh_server_restored_from_a_checkpoint_has_the_cwds_and_reads_the_layers_back_from_disk()
    {
        string root = Directory.CreateDirectory(Path.Combine(_temp, "root")).FullName;
        Directory.CreateDirectory(Path.Combine(root, "a"));
        File.WriteAllText(Path.Combine(root, "a", "lower"), "lower");
        await Proxy.ConfigureAsync(Config(root, "/"));
        await Proxy.SetCwdAsync(1, (await Resolve(1, "/a", PathOp.Stat)).HostPath ?? root + "/a");
        await Proxy.ProcessCreatedAsync(1, 2, shareFs: true);
        await Proxy.ProcessCreatedAsync(1, 3, shareFs: false);
        Assert.Equal(0, await Proxy.ChangeAsync(new NameChange(1, NameOp.Unlink, new PathArg("/a/lower"), Credentials.Root, RequestId: 7)));
        var checkpoint = await Proxy.CheckpointAsync();
        Assert.NotNull(checkpoint);

        var successor = await Successor();
        await successor.RestoreAsync(checkpoint!);

        foreach (int pid in new[] { 1, 2, 3 })
            Assert.Equal(await Proxy.GetCwdAsync(pid), await successor.GetCwdAsync(pid));
        Assert.Equal(Errno.ENOENT, (await successor.ResolveAsync(new PathRequest(1, 1, new PathArg("/a/lower"), PathOp.Stat, true, Credentials.Root, 0))).Errno);
        // The change the dead server answered is answered again, not made twice; a new one is made.
        Assert.Equal(0, await successor.ChangeAsync(new NameChange(1, NameOp.Unlink, new PathArg("/a/lower"), Credentials.Root, RequestId: 7)));
        Assert.Equal(Errno.ENOENT, await successor.ChangeAsync(new NameChange(1, NameOp.Unlink, new PathArg("/a/lower"), Credentials.Root, RequestId: 8)));
        // Pids 1 and 2 still share one cwd.
        await successor.SetCwdAsync(2, "/");
        Assert.Equal(new CwdResult(0, "/"), await successor.GetCwdAsync(1));
        Assert.Equal(new CwdResult(0, "/a"), await successor.GetCwdAsync(3));
    }

    [Fact]
    public async Task A_checkpoint_is_restored_into_a_fresh_server_only_and_garbage_is_refused()
    {
        Assert.Null(await Proxy.CheckpointAsync()); // nothing to keep before configure
        await Proxy.ConfigureAsync(HostRoot());
        var checkpoint = await Proxy.CheckpointAsync();

        await Refused(() => Proxy.RestoreAsync(checkpoint!));
        var successor = await Successor();
        await Assert.ThrowsAnyAsync<StreamJsonRpc.RemoteRpcException>(() => successor.RestoreAsync("{"));
        await Assert.ThrowsAnyAsync<StreamJsonRpc.RemoteRpcException>(() => successor.RestoreAsync("{\"Cwds\": []}"));
        await successor.ConfigureAsync(HostRoot());
        Assert.Equal(new CwdResult(0, "/"), await successor.GetCwdAsync(1));
    }

    [Fact]
    public async Task A_child_starts_in_its_parents_cwd_and_moves_alone()
    {
        await Proxy.ConfigureAsync(HostRoot());
        await Proxy.SetCwdAsync(1, "/usr");
        await Proxy.ProcessCreatedAsync(1, 2, shareFs: false);
        Assert.Equal(new CwdResult(0, "/usr"), await Proxy.GetCwdAsync(2));

        await Proxy.SetCwdAsync(2, "/var");

        Assert.Equal(new CwdResult(0, "/usr"), await Proxy.GetCwdAsync(1));
        Assert.Equal(new CwdResult(0, "/var"), await Proxy.GetCwdAsync(2));
    }

    [Fact]
    public async Task A_shared_cwd_moves_for_both()
    {
        await Proxy.ConfigureAsync(HostRoot());
        await Proxy.ProcessCreatedAsync(1, 2, shareFs: true);

        await Proxy.SetCwdAsync(2, "/tmp");
        Assert.Equal(new CwdResult(0, "/tmp"), await Proxy.GetCwdAsync(1));
        await Proxy.SetCwdAsync(1, "/etc");
        Assert.Equal("/etc/x", (await Resolve(2, "x", PathOp.Open, LinuxFlags.O_CREAT | LinuxFlags.O_WRONLY)).GuestPath);
    }

    [Fact]
    public async Task An_exited_or_unknown_process_has_no_cwd()
    {
        await Proxy.ConfigureAsync(HostRoot());
        await Proxy.ProcessCreatedAsync(1, 2, shareFs: false);
        await Proxy.ProcessExitedAsync(2);

        Assert.Equal(new CwdResult(Errno.ESRCH, null), await Proxy.GetCwdAsync(2));
        Assert.Equal(new CwdResult(Errno.ESRCH, null), await Proxy.GetCwdAsync(99));
        await Refused(() => Proxy.SetCwdAsync(99, "/"));
        await Refused(() => Proxy.ProcessCreatedAsync(99, 100, shareFs: false));
    }

    [Fact]
    public async Task A_host_directory_as_root_prefixes_every_path_and_confines_symlinks()
    {
        string root = Directory.CreateDirectory(Path.Combine(_temp, "root")).FullName;
        Directory.CreateDirectory(Path.Combine(root, "home"));
        Directory.CreateDirectory(Path.Combine(root, "etc"));
        File.WriteAllText(Path.Combine(root, "etc/passwd"), "guest\n");
        File.CreateSymbolicLink(Path.Combine(root, "escape"), "/");
        await Proxy.ConfigureAsync(Config(root, "/home"));

        Assert.Equal(new PathResolution(0, root + "/etc/passwd", "/etc/passwd"), await Resolve(1, "../etc/passwd"));
        Assert.Equal(new PathResolution(0, root + "/etc/passwd", "/etc/passwd"), await Resolve(1, "/escape/../etc/passwd"));
        Assert.Equal(new PathResolution(0, root + "/etc/passwd", "/etc/passwd"), await Resolve(1, "/escape/escape/etc/passwd"));
        Assert.Equal("/home", (await Resolve(1, ".")).GuestPath);
        Assert.Equal(Errno.ENOENT, (await Resolve(1, "/escape" + _temp)).Errno);
        Assert.Equal(Errno.ENOENT, (await Resolve(1, "/usr/bin")).Errno);
        Assert.Equal(new CwdResult(0, "/home"), await Proxy.GetCwdAsync(1));
    }

    [Fact]
    public async Task Proc_asks_for_the_guests_processes_and_shows_only_them()
    {
        await Proxy.ConfigureAsync(HostRoot());
        int me = Environment.ProcessId;
        var processes = new[] { new ProcPid(1, me, [new ProcTid(1, me)]) };

        var first = await Resolve(1, "/proc/self/status", PathOp.Open);
        Assert.True(first.NeedProcesses);
        var request = new PathRequest(1, 1, new PathArg("/proc/self/status"), PathOp.Open, true, Credentials.Root, 0, processes);
        var render = (await Proxy.ResolveAsync(request)).Render;
        // The text is Sched's, made from the host's status of the same task, which the supervisor reads then (the answer
        // names the file, not its text), and is the file's as it is: the supervisor writes it to the VFS's file for it.
        Assert.NotNull(render);
        Assert.Equal((ProcOwner.Sched, me, 1, 1, "status"), (render.Owner, render.HostTid, render.Request.Vpid, render.Request.Vtid, render.Request.File));
        Assert.Equal(($"/proc/{me}/status", ""), (render.HostSource, render.Request.HostText));
        Assert.Equal(Path.Combine(MemoryDir, "proc"), Path.GetDirectoryName(render.Material));
        // A supervisor that asks again with the text gets the same file made by the VFS.
        var status = await Proxy.ResolveAsync(request with { Rendered = new ProcRendered(1, 1, "status", new ProcText("Pid:\t1\nPPid:\t0\n")) });
        Assert.Equal(render.Material, status.HostPath);
        Assert.Equal(["Pid:\t1", "PPid:\t0"], File.ReadAllLines(status.HostPath!));
        Assert.Equal("/proc/1/status", status.GuestPath);
        // Text made for another file is not this one's.
        Assert.NotNull((await Proxy.ResolveAsync(request with { Rendered = new ProcRendered(1, 1, "stat", new ProcText("1 (x) R\n")) })).Render);

        var proc = await Proxy.ResolveAsync(new PathRequest(1, 1, new PathArg("/proc"), PathOp.Open, true, Credentials.Root, LinuxFlags.O_DIRECTORY, processes));
        var numeric = Directory.GetFileSystemEntries(proc.HostPath!).Select(Path.GetFileName).OfType<string>().Where(n => n.All(char.IsAsciiDigit)).ToArray();
        Assert.Equal(["1"], numeric);
        var host = await Proxy.ResolveAsync(new PathRequest(1, 1, new PathArg($"/proc/{me}/status"), PathOp.Open, true, Credentials.Root, 0, processes));
        Assert.Equal(Errno.ENOENT, host.Errno);
    }

    [Fact]
    public async Task Proc_maps_is_mms_text_with_each_mapped_files_guest_path()
    {
        string bound = Directory.CreateDirectory(Path.Combine(_temp, "lib")).FullName;
        string lib = Path.Combine(bound, "libx.so");
        File.WriteAllText(lib, "x");
        await Proxy.ConfigureAsync(HostRoot("/", new MountSpec("bind", "/opt/lib", bound, false)));
        int me = Environment.ProcessId;
        var processes = new[] { new ProcPid(1, me, [new ProcTid(1, me)]) };
        var request = new PathRequest(1, 1, new PathArg("/proc/self/maps"), PathOp.Open, true, Credentials.Root, 0, processes);

        var first = await Proxy.ResolveAsync(request);
        Assert.Equal(ProcOwner.Mm, first.Render?.Owner);
        Assert.Equal("maps", first.Render?.Request.File);
        Assert.Null(first.HostPath);
        // Not the file's text as it is (the VFS names its files): asked again with it.
        Assert.Null(first.Render?.Material);

        var inode = new FileInfo(lib);
        var text = new ProcText(
            "00010000-00011000 r--p 00001000 00:00 0 ".PadRight(72) + " " + lib + "\n" +
            "00020000-00021000 rw-p 00000000 00:00 0 ".PadRight(72) + " [heap]\n",
            [new MappedFile(0, 0, 0, 0)]);
        var maps = await Proxy.ResolveAsync(request with { Rendered = new ProcRendered(1, 1, "maps", text) });

        Assert.Equal(
            // Device and inode as MM gave them; they are not the file's, so the host path no longer names it: deleted.
            "00010000-00011000 r--p 00001000 00:00 0 ".PadRight(72) + " /opt/lib/libx.so (deleted)\n" +
            "00020000-00021000 rw-p 00000000 00:00 0 ".PadRight(72) + " [heap]\n",
            File.ReadAllText(maps.HostPath!));
    }

    [Fact]
    public async Task A_read_only_bind_is_EROFS_and_a_tmpfs_lives_in_the_memory_directory()
    {
        string bound = Directory.CreateDirectory(Path.Combine(_temp, "bound")).FullName;
        File.WriteAllText(Path.Combine(bound, "f"), "f");
        await Proxy.ConfigureAsync(HostRoot("/", new MountSpec("bind", "/mnt/ro", bound, true), new MountSpec("tmpfs", "/scratch", "", false)));

        Assert.Equal(Errno.EROFS, (await Resolve(1, "/mnt/ro/f", PathOp.Open, LinuxFlags.O_WRONLY)).Errno);
        Assert.Equal(Errno.EROFS, (await Resolve(1, "/mnt/ro/new", PathOp.Open, LinuxFlags.O_WRONLY | LinuxFlags.O_CREAT)).Errno);
        Assert.Equal(Errno.EROFS, await Proxy.ChangeAsync(new NameChange(1, NameOp.Unlink, new PathArg("/mnt/ro/f"), Credentials.Root)));
        Assert.Equal(bound + "/f", (await Resolve(1, "/mnt/ro/f", PathOp.Open)).HostPath);
        var scratch = await Resolve(1, "/scratch/x", PathOp.Open, LinuxFlags.O_WRONLY | LinuxFlags.O_CREAT);
        Assert.StartsWith(MemoryDir + "/", scratch.HostPath);
        File.WriteAllText(scratch.HostPath!, "x");
        // A name that exists would be EEXIST first, as Linux checks it before the mounts.
        string elsewhere = "/tmp/umlmicro-absent-" + Guid.NewGuid().ToString("N");
        Assert.Equal(Errno.EXDEV, await Proxy.ChangeAsync(new NameChange(1, NameOp.Rename, new PathArg("/scratch/x"), Credentials.Root, new PathArg(elsewhere))));
        Assert.Equal(Errno.EXDEV, await Proxy.ChangeAsync(new NameChange(1, NameOp.Link, new PathArg("/scratch/x"), Credentials.Root, new PathArg(elsewhere))));
        Assert.Equal("/scratch/x", await Proxy.GuestPathAsync(scratch.HostPath!));
    }

    [Fact]
    public async Task A_configuration_that_is_not_a_namespace_is_refused()
    {
        await Refused(() => Proxy.ResolveAsync(new PathRequest(1, 1, new PathArg("/x"), PathOp.Stat, true, Credentials.Root))); // not configured yet
        await Refused(() => Proxy.ConfigureAsync(new VfsConfig([], "/", StateDir, MemoryDir)));
        await Refused(() => Proxy.ConfigureAsync(new VfsConfig([new("bind", "/mnt", "/", false)], "/", StateDir, MemoryDir)));
        await Refused(() => Proxy.ConfigureAsync(Config("relative/root", "/")));
        await Refused(() => Proxy.ConfigureAsync(Config("/no/such/umlmicro/root", "/")));
        await Refused(() => Proxy.ConfigureAsync(HostRoot("relative")));
        await Refused(() => Proxy.ConfigureAsync(HostRoot("/no/such/umlmicro/cwd")));
        await Refused(() => Proxy.ConfigureAsync(HostRoot() with { StateDir = "/no/such/umlmicro/state" }));
        await Refused(() => Proxy.ConfigureAsync(HostRoot("/", new MountSpec("nfs", "/net", "", false))));
    }

    [Fact]
    public async Task A_refused_configuration_changes_nothing()
    {
        await Refused(() => Proxy.ConfigureAsync(HostRoot("/no/such/umlmicro/cwd")));

        await Refused(() => Proxy.ResolveAsync(new PathRequest(1, 1, new PathArg("/etc/passwd"), PathOp.Stat, true, Credentials.Root)));
    }

    public new void Dispose()
    {
        base.Dispose();
        Directory.Delete(_temp, recursive: true);
    }

    private Task<PathResolution> Resolve(int vpid, string path, PathOp op = PathOp.Stat, int flags = 0) =>
        Proxy.ResolveAsync(new PathRequest(vpid, vpid, new PathArg(path), op, FollowLast: true, Credentials.Root, flags));
}
