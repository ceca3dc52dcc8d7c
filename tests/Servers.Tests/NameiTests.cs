using UmlMicro.Contracts.Linux;
using UmlMicro.Contracts.Servers;

namespace UmlMicro.ServersTests;

/// <summary>
/// Path resolution in a --root style namespace: symlinks are followed inside the guest root (an absolute target
/// starts again at the guest's root, ".." stops there), loops are ELOOP, and no walk ends at a host path outside
/// the root.
/// </summary>
public sealed class NameiTests : IDisposable
{
    private readonly VfsHarness _vfs = new();
    private readonly string _outside = Directory.CreateTempSubdirectory("umlmicro-vfs-outside-").FullName;

    public NameiTests()
    {
        File.WriteAllText(Path.Combine(_outside, "secret"), "host secret\n");
        _vfs.Lower("etc/hostname", "guest\n");
        _vfs.Lower("home/u/notes", "notes\n");
        _vfs.LowerLink("escape", "/");
        _vfs.LowerLink("up", "../../..");
        _vfs.LowerLink("home/u/deep-up", "../../../../../../..");
        _vfs.LowerLink("outside", _outside);
        _vfs.LowerLink("loop-a", "loop-b");
        _vfs.LowerLink("loop-b", "loop-a");
        _vfs.LowerLink("self", "self");
        _vfs.LowerLink("to-etc", "/etc/");
        _vfs.LowerLink("empty-dir-link", "home/u/");
    }

    public void Dispose()
    {
        _vfs.Dispose();
        Directory.Delete(_outside, recursive: true);
    }

    [Theory]
    [InlineData("/../../etc/hostname")]
    [InlineData("/escape/etc/hostname")]
    [InlineData("/escape/../../escape/etc/hostname")]
    [InlineData("/up/etc/hostname")]
    [InlineData("/up/up/../etc/hostname")]
    [InlineData("/home/u/deep-up/etc/hostname")]
    [InlineData("/to-etc/hostname")]
    [InlineData("/home/u/../../../../etc/./hostname")]
    public async Task Dot_dot_and_symlinks_stop_at_the_guest_root(string path)
    {
        var r = await _vfs.Stat(path);

        Assert.Equal(0, r.Errno);
        Assert.Equal("/etc/hostname", r.GuestPath);
        Assert.Equal(_vfs.LowerPath("etc/hostname"), r.HostPath);
    }

    [Theory]
    [InlineData("/outside/secret")]
    [InlineData("/escape" + "/tmp/../outside/secret")]
    public async Task An_absolute_link_to_a_host_directory_means_that_path_inside_the_root(string path)
    {
        var r = await _vfs.Stat(path);

        // The link names a host directory; inside the guest root that path does not exist.
        Assert.Equal(Errno.ENOENT, r.Errno);
        Assert.Null(r.HostPath);
    }

    [Fact]
    public async Task A_host_path_outside_the_root_is_not_reachable_by_its_own_name()
    {
        string secret = Path.Combine(_outside, "secret");

        var direct = await _vfs.Stat(secret);
        var viaEscape = await _vfs.Stat("/escape" + secret);
        var viaUp = await _vfs.Stat("/home/u/deep-up" + secret);

        Assert.Equal(Errno.ENOENT, direct.Errno);
        Assert.Equal(Errno.ENOENT, viaEscape.Errno);
        Assert.Equal(Errno.ENOENT, viaUp.Errno);
        // Created under the root, not on the host.
        var create = await _vfs.Resolve(secret, PathOp.Open, LinuxFlags.O_CREAT | LinuxFlags.O_WRONLY);
        Assert.Equal(Errno.ENOENT, create.Errno); // its parent directories are not in the guest's tree
    }

    [Fact]
    public async Task The_root_itself_resolves_to_the_lower_root_for_every_spelling()
    {
        foreach (var path in new[] { "/", "/..", "/escape", "/escape/", "/up", "/home/u/deep-up", "/./.././" })
        {
            var r = await _vfs.Stat(path);
            Assert.True(r.Errno == 0 && r.GuestPath == "/", $"{path}: {r}");
            string host = (r.HostPath ?? path).TrimEnd('/');
            Assert.True(host == _vfs.LowerRoot || host.StartsWith(_vfs.StateDir + "/", StringComparison.Ordinal), $"{path} went to {host}");
        }
    }

    [Theory]
    [InlineData("/loop-a")]
    [InlineData("/loop-b/x")]
    [InlineData("/self")]
    [InlineData("/self/")]
    public async Task Symlink_loops_are_ELOOP(string path)
    {
        Assert.Equal(Errno.ELOOP, (await _vfs.Stat(path)).Errno);
        Assert.Equal(Errno.ELOOP, (await _vfs.Resolve(path, PathOp.Open, LinuxFlags.O_WRONLY | LinuxFlags.O_CREAT)).Errno);
    }

    [Fact]
    public async Task A_loop_is_a_link_itself_when_the_last_one_is_not_followed()
    {
        var r = await _vfs.Stat("/loop-a", follow: false);

        Assert.Equal(0, r.Errno);
        Assert.Equal("/loop-a", r.GuestPath);
    }

    [Fact]
    public async Task Forty_links_are_followed_forty_one_are_ELOOP()
    {
        // chain/l0 -> l1 -> ... -> l40 -> target: 40 links in the walk from l1, 41 from l0 (as on Linux:
        // cat l1 prints, cat l0 is "Too many levels of symbolic links").
        _vfs.Lower("chain/target", "end\n");
        for (int i = 0; i < 40; i++) _vfs.LowerLink($"chain/l{i}", $"l{i + 1}");
        _vfs.LowerLink("chain/l40", "target");

        Assert.Equal(0, (await _vfs.Stat("/chain/l2")).Errno);
        Assert.Equal(0, (await _vfs.Stat("/chain/l1")).Errno);
        Assert.Equal(Errno.ELOOP, (await _vfs.Stat("/chain/l0")).Errno);
    }

    [Fact]
    public async Task A_file_used_as_a_directory_is_ENOTDIR()
    {
        Assert.Equal(Errno.ENOTDIR, (await _vfs.Stat("/etc/hostname/x")).Errno);
        Assert.Equal(Errno.ENOTDIR, (await _vfs.Stat("/etc/hostname/")).Errno);
        Assert.Equal(Errno.ENOTDIR, (await _vfs.Stat("/etc/hostname/..")).Errno);
        Assert.Equal(Errno.ENOTDIR, await _vfs.Change(NameOp.Unlink, "/etc/hostname/x"));
    }

    [Fact]
    public async Task A_name_of_256_bytes_is_ENAMETOOLONG_255_is_looked_up()
    {
        Assert.Equal(Errno.ENAMETOOLONG, (await _vfs.Stat("/etc/" + new string('x', 256))).Errno);
        Assert.Equal(Errno.ENAMETOOLONG, await _vfs.Change(NameOp.Unlink, "/etc/" + new string('x', 256)));
        Assert.Equal(Errno.ENOENT, (await _vfs.Stat("/etc/" + new string('x', 255))).Errno);
        var create = await _vfs.Resolve("/etc/" + new string('x', 255), PathOp.Open, LinuxFlags.O_CREAT | LinuxFlags.O_WRONLY);
        Assert.Equal(0, create.Errno);
    }

    [Fact]
    public async Task A_relative_path_walks_from_the_cwd_and_a_dirfd()
    {
        var server = await _vfs.Start("/home/u");

        var notes = await _vfs.Stat("notes");
        Assert.Equal("/home/u/notes", notes.GuestPath);
        Assert.True(notes.HostPath is null || notes.HostPath == _vfs.LowerPath("home/u/notes"), notes.ToString()); // the host's cwd is that directory
        Assert.Equal(_vfs.LowerPath("etc/hostname"), await _vfs.HostOf("../../../../etc/hostname"));
        Assert.Equal(new CwdResult(0, "/home/u"), await server.GetCwdAsync(1));
        var viaDirFd = await _vfs.Resolve("hostname", PathOp.Stat, dirHost: _vfs.LowerPath("etc"));
        Assert.Equal(new PathResolution(0, null, "/etc/hostname"), viaDirFd);
        var upViaDirFd = await _vfs.Resolve("../../../home/u/notes", PathOp.Stat, dirHost: _vfs.LowerPath("etc"));
        Assert.Equal("/home/u/notes", upViaDirFd.GuestPath);
        Assert.Equal(_vfs.LowerPath("home/u/notes"), upViaDirFd.HostPath);
    }

    [Fact]
    public async Task A_dirfd_outside_the_guests_namespace_cannot_be_walked_from()
    {
        var r = await _vfs.Resolve("secret", PathOp.Stat, dirHost: _outside);

        Assert.NotEqual(0, r.Errno);
        Assert.Null(r.HostPath);
    }

    [Fact]
    public async Task Proc_self_root_is_the_guest_root()
    {
        var processes = new[] { new ProcPid(1, Environment.ProcessId, [new ProcTid(1, Environment.ProcessId)]) };
        var request = new PathRequest(1, 1, new PathArg("/proc/self/root/etc/hostname"), PathOp.Stat, true, Credentials.Root);

        var first = await _vfs.Server.ResolveAsync(request);
        Assert.True(first.NeedProcesses);
        var r = await _vfs.Server.ResolveAsync(request with { Processes = processes });

        Assert.Equal(new PathResolution(0, _vfs.LowerPath("etc/hostname"), "/etc/hostname"), r);
        var escape = await _vfs.Server.ResolveAsync(request with { Arg = new PathArg("/proc/self/root/../../../" + _outside + "/secret"), Processes = processes });
        Assert.Equal(Errno.ENOENT, escape.Errno);
    }
}
