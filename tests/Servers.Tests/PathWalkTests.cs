using StreamJsonRpc;
using UmlMicro.Contracts.Linux;
using UmlMicro.Contracts.Servers;
using UmlMicro.Servers.Vfs;

namespace UmlMicro.ServersTests;

public sealed class PathWalkTests
{
    [Theory]
    [InlineData("/", "/", "/", true)]
    [InlineData("/", "/etc/passwd", "/etc/passwd", false)]
    [InlineData("/", "//etc///passwd", "/etc/passwd", false)]
    [InlineData("/home/u", "notes.txt", "/home/u/notes.txt", false)]
    [InlineData("/home/u", "./a/./b", "/home/u/a/b", false)]
    [InlineData("/home/u", "..", "/home", true)]
    [InlineData("/home/u", "../../../../..", "/", true)]
    [InlineData("/home/u", "/../../etc/../tmp", "/tmp", false)]
    [InlineData("/home/u", "a/b/../c", "/home/u/a/c", false)]
    [InlineData("/home/u", "dir/", "/home/u/dir", true)]
    [InlineData("/home/u", "dir/.", "/home/u/dir", true)]
    [InlineData("/home/u", ".", "/home/u", true)]
    [InlineData("/home/u", "...", "/home/u/...", false)]
    [InlineData("/", "a/..b/.c", "/a/..b/.c", false)]
    public void Walks_fold_dots_lexically(string cwd, string path, string guestPath, bool mustBeDirectory)
    {
        Assert.Equal(new WalkedPath(guestPath, mustBeDirectory), PathWalk.Walk(cwd, path));
    }

    [Fact]
    public void Path_strings_fail_as_Linux_fails_them()
    {
        Assert.Equal(Errno.ENOENT, PathWalk.Check(""));
        Assert.Equal(0, PathWalk.Check("/" + new string('a', 255)));
        Assert.Equal(Errno.ENAMETOOLONG, PathWalk.Check("/" + new string('a', 256) + "/.."));
        Assert.Equal(0, PathWalk.Check(LongPath(4095)));
        Assert.Equal(Errno.ENAMETOOLONG, PathWalk.Check(LongPath(4096)));
    }

    [Fact]
    public void Lengths_are_counted_in_utf8_bytes()
    {
        string twoByteName = new('é', 128); // 256 bytes

        Assert.Equal(Errno.ENAMETOOLONG, PathWalk.Check("/" + twoByteName));
        Assert.Equal(0, PathWalk.Check("/" + twoByteName[..^1]));
    }

    [Fact]
    public void A_host_directory_root_prefixes_and_keeps_a_demand_for_a_directory()
    {
        var mount = new RootMount("/srv/guest");

        Assert.False(mount.IsIdentity);
        Assert.Equal("/srv/guest/etc/passwd", mount.ToHost(new WalkedPath("/etc/passwd", false)));
        Assert.Equal("/srv/guest/etc/", mount.ToHost(new WalkedPath("/etc", true)));
        Assert.Equal("/srv/guest/", mount.ToHost(new WalkedPath("/", true)));
        Assert.True(new RootMount("/").IsIdentity);
    }

    [Fact]
    public async Task The_server_rewrites_only_under_a_host_directory_root()
    {
        var vfs = new VfsServer();
        Assert.Equal(new PathResolution(0, null, "/etc/passwd"), await Resolve(vfs, "/etc/../etc/passwd"));

        await vfs.ConfigureAsync(new VfsConfig(Path.GetTempPath(), "/"));
        string root = PathWalk.Walk("/", Path.GetTempPath()).GuestPath;

        Assert.Equal(new PathResolution(0, root + "/etc/passwd", "/etc/passwd"), await Resolve(vfs, "/etc/../etc/passwd"));
    }

    [Fact]
    public async Task The_server_refuses_a_rewritten_path_the_host_cannot_take()
    {
        var vfs = new VfsServer();
        await vfs.ConfigureAsync(new VfsConfig(Path.GetTempPath(), "/"));
        await vfs.SetCwdAsync(1, LongPath(4000));

        Assert.Equal(Errno.ENAMETOOLONG, (await Resolve(vfs, new string('f', 200))).Errno);
    }

    [Fact]
    public async Task The_server_shares_a_cwd_only_with_clone_fs()
    {
        var vfs = new VfsServer();
        await vfs.ProcessCreatedAsync(1, 2, shareFs: true);
        await vfs.ProcessCreatedAsync(2, 3, shareFs: false);

        await vfs.SetCwdAsync(2, "/tmp/");
        await vfs.ProcessExitedAsync(2);

        Assert.Equal(new CwdResult(0, "/tmp"), await vfs.GetCwdAsync(1));
        Assert.Equal(new CwdResult(0, "/"), await vfs.GetCwdAsync(3));
        Assert.Equal(new CwdResult(Errno.ESRCH, null), await vfs.GetCwdAsync(2));
        await Assert.ThrowsAsync<LocalRpcException>(() => vfs.ProcessCreatedAsync(1, 3, shareFs: false));
        await Assert.ThrowsAsync<LocalRpcException>(() => vfs.SetCwdAsync(1, "relative"));
    }

    private static Task<PathResolution> Resolve(VfsServer vfs, string path) =>
        vfs.ResolveAsync(new PathRequest(1, LinuxFlags.AT_FDCWD, path, PathOp.Open, FollowLast: true));

    /// <summary>An absolute path of exactly <paramref name="bytes"/> bytes, in components of at most 100.</summary>
    private static string LongPath(int bytes)
    {
        var path = new System.Text.StringBuilder();
        while (path.Length < bytes)
        {
            path.Append('/');
            path.Append('d', Math.Min(100, Math.Max(bytes - path.Length, 1)));
        }
        return path.ToString(0, bytes);
    }
}
