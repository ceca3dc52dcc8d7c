using UmlMicro.Contracts.Linux;
using UmlMicro.Contracts.Servers;

namespace UmlMicro.ContractTests;

public sealed class VfsContractTests() : ServerContractTest<IVfsServer>("Vfs")
{
    private const int NameMax = 255;

    [Fact]
    public async Task Hello_names_the_vfs_contract()
    {
        var hello = await Proxy.HelloAsync();

        Assert.Equal(Contract.VfsName, hello.Name);
        Assert.Equal(Contract.VfsVersion, hello.ContractVersion);
        Assert.Equal(Server.Pid, hello.ServerPid);
    }

    [Fact]
    public async Task Under_the_host_root_no_path_is_rewritten()
    {
        await Proxy.ConfigureAsync(new VfsConfig("/", "/"));

        Assert.Equal(new PathResolution(0, null, "/etc/passwd"), await Resolve(1, "/etc/passwd"));
        Assert.Equal(new PathResolution(0, null, "/etc"), await Resolve(1, "/etc/"));
        Assert.Equal(new PathResolution(0, null, "/etc"), await Resolve(1, "/usr/../etc"));
    }

    [Fact]
    public async Task The_kernels_own_files_are_handed_out_by_host_path_and_read_only()
    {
        await Proxy.ConfigureAsync(new VfsConfig("/", "/", Release: "6.1-test", Hostname: "guestbox"));

        var release = await Proxy.ResolveAsync(new PathRequest(1, LinuxFlags.AT_FDCWD, "/proc/sys/kernel/osrelease", PathOp.Open, true));
        Assert.Equal(0, release.Errno);
        Assert.Equal("6.1-test\n", File.ReadAllText(release.HostPath!));
        var host = await Proxy.ResolveAsync(new PathRequest(1, LinuxFlags.AT_FDCWD, "/proc/sys/../sys/kernel/hostname", PathOp.Stat, true));
        Assert.Equal("guestbox\n", File.ReadAllText(host.HostPath!));
        var write = await Proxy.ResolveAsync(new PathRequest(1, LinuxFlags.AT_FDCWD, "/proc/sys/kernel/hostname", PathOp.Open, true, LinuxFlags.O_WRONLY));
        Assert.Equal(new PathResolution(Errno.EACCES, null, "/proc/sys/kernel/hostname"), write);
        Assert.Null((await Resolve(1, "/proc/sys/kernel/pid_max")).HostPath);
    }

    [Fact]
    public async Task The_guests_cpus_are_what_cpuinfo_and_sysfs_count()
    {
        await Proxy.ConfigureAsync(new VfsConfig("/", "/", Cpus: 3));

        var online = await Proxy.ResolveAsync(new PathRequest(1, LinuxFlags.AT_FDCWD, "/sys/devices/system/cpu/online", PathOp.Open, true));
        Assert.Equal("0-2\n", File.ReadAllText(online.HostPath!));
        var cpuinfo = await Proxy.ResolveAsync(new PathRequest(1, LinuxFlags.AT_FDCWD, "/proc/cpuinfo", PathOp.Open, true));
        var processors = File.ReadAllLines(cpuinfo.HostPath!).Where(l => l.StartsWith("processor")).ToArray();
        Assert.Equal(["processor\t: 0", "processor\t: 1", "processor\t: 2"], processors);
    }

    [Fact]
    public async Task A_relative_path_is_resolved_against_the_cwd()
    {
        await Proxy.ConfigureAsync(new VfsConfig("/", "/home"));
        Assert.Equal(new PathResolution(0, null, "/home/notes"), await Resolve(1, "notes"));

        await Proxy.SetCwdAsync(1, "/usr/lib/../bin");

        Assert.Equal(new CwdResult(0, "/usr/bin"), await Proxy.GetCwdAsync(1));
        Assert.Equal(new PathResolution(0, null, "/usr/bin/ls"), await Resolve(1, "./ls"));
        Assert.Equal(new PathResolution(0, null, "/usr"), await Resolve(1, ".."));
    }

    [Fact]
    public async Task Dot_dot_at_the_root_stays_at_the_root()
    {
        await Proxy.ConfigureAsync(new VfsConfig("/", "/"));

        Assert.Equal(new PathResolution(0, null, "/etc/hosts"), await Resolve(1, "/../../etc/./hosts"));
        Assert.Equal(new PathResolution(0, null, "/tmp"), await Resolve(1, "../../tmp"));
    }

    [Fact]
    public async Task Paths_fail_as_Linux_fails_them()
    {
        string longName = new('n', NameMax + 1);
        string longPath = "/" + string.Join('/', Enumerable.Repeat(new string('d', 99), 41)); // 4100 bytes

        Assert.Equal(Errno.ENOENT, (await Resolve(1, "")).Errno);
        Assert.Equal(Errno.ENAMETOOLONG, (await Resolve(1, "/tmp/" + longName)).Errno);
        Assert.Equal(Errno.ENAMETOOLONG, (await Resolve(1, longPath)).Errno);
        Assert.Equal(Errno.ENAMETOOLONG, (await Resolve(1, longPath[..LinuxFlags.PATH_MAX])).Errno);
        Assert.Equal(0, (await Resolve(1, longPath[..(LinuxFlags.PATH_MAX - 1)])).Errno);
        Assert.Equal(0, (await Resolve(1, "/tmp/" + longName[..^1])).Errno);
    }

    [Fact]
    public async Task A_path_under_another_directory_fd_is_left_to_the_host()
    {
        Assert.Equal(new PathResolution(0, null, null), await Resolve(1, "file", dirFd: 3));
        Assert.Equal(new PathResolution(0, null, "/etc"), await Resolve(1, "/etc", dirFd: 3));
    }

    [Fact]
    public async Task A_child_starts_in_its_parents_cwd_and_moves_alone()
    {
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
        await Proxy.ProcessCreatedAsync(1, 2, shareFs: true);

        await Proxy.SetCwdAsync(2, "/tmp");
        Assert.Equal(new CwdResult(0, "/tmp"), await Proxy.GetCwdAsync(1));
        await Proxy.SetCwdAsync(1, "/srv");
        Assert.Equal(new PathResolution(0, null, "/srv/x"), await Resolve(2, "x"));
    }

    [Fact]
    public async Task An_exited_or_unknown_process_has_no_cwd()
    {
        await Proxy.ProcessCreatedAsync(1, 2, shareFs: false);
        await Proxy.ProcessExitedAsync(2);

        Assert.Equal(new CwdResult(Errno.ESRCH, null), await Proxy.GetCwdAsync(2));
        Assert.Equal(new CwdResult(Errno.ESRCH, null), await Proxy.GetCwdAsync(99));
        await Refused(() => Proxy.SetCwdAsync(99, "/"));
        await Refused(() => Proxy.ProcessCreatedAsync(99, 100, shareFs: false));
    }

    [Fact]
    public async Task A_host_directory_as_root_prefixes_every_path()
    {
        string root = Directory.CreateTempSubdirectory("umlmicro-vfs-").FullName;
        try
        {
            await Proxy.ConfigureAsync(new VfsConfig(root, "/home"));

            Assert.Equal(new PathResolution(0, root + "/home/x", "/home/x"), await Resolve(1, "x"));
            Assert.Equal(new PathResolution(0, root + "/etc", "/etc"), await Resolve(1, "/../etc"));
            Assert.Equal(new PathResolution(0, root + "/", "/"), await Resolve(1, "/"));
            Assert.Equal(new PathResolution(0, root + "/home/", "/home"), await Resolve(1, "."));
            Assert.Equal(new PathResolution(0, root + "/tmp/", "/tmp"), await Resolve(1, "../tmp/"));
        }
        finally
        {
            Directory.Delete(root);
        }
    }

    [Fact]
    public async Task A_root_that_is_not_an_absolute_host_directory_is_refused()
    {
        await Refused(() => Proxy.ConfigureAsync(new VfsConfig("relative/root", "/")));
        await Refused(() => Proxy.ConfigureAsync(new VfsConfig("/no/such/umlmicro/root", "/")));
        await Refused(() => Proxy.ConfigureAsync(new VfsConfig("/", "relative")));
    }

    private Task<PathResolution> Resolve(int vpid, string path, int dirFd = LinuxFlags.AT_FDCWD) =>
        Proxy.ResolveAsync(new PathRequest(vpid, dirFd, path, PathOp.Stat, FollowLast: true));
}
