using StreamJsonRpc;
using UmlMicro.Contracts.Linux;
using UmlMicro.Contracts.Servers;
using UmlMicro.Servers.Vfs;

namespace UmlMicro.ServersTests;

/// <summary>The checks on the path string (PathWalk.Check) and the lexical walk used for configured paths.</summary>
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
        Assert.Equal(Errno.ENAMETOOLONG, PathWalk.Check("/" + new string('a', 256)));
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
    public async Task The_server_refuses_a_path_the_host_cannot_take()
    {
        using var vfs = new VfsHarness();
        vfs.Lower("a/f", "x");

        Assert.Equal(Errno.ENAMETOOLONG, (await vfs.Stat("/a/" + new string('n', 256))).Errno);
        Assert.Equal(Errno.ENAMETOOLONG, (await vfs.Stat(LongPath(4096))).Errno);
        Assert.Equal(Errno.ENOENT, (await vfs.Stat("")).Errno);
        // 255 bytes is a valid name: it just is not there.
        Assert.Equal(Errno.ENOENT, (await vfs.Stat("/a/" + new string('n', 255))).Errno);
    }

    [Fact]
    public async Task A_cwd_follows_its_directory_when_it_or_a_directory_above_it_is_renamed()
    {
        using var vfs = new VfsHarness();
        var server = await vfs.Start();
        // Made in the guest (the upper layer): a directory of the read-only layer cannot be renamed (EXDEV).
        Assert.Equal(0, await vfs.Mkdir("/w"));
        Assert.Equal(0, await vfs.Mkdir("/w/src"));
        await vfs.Write("/w/src/f", "x");
        await server.ProcessCreatedAsync(1, 2, shareFs: false);
        await server.SetCwdAsync(1, await vfs.HostOf("/w/src"));
        await server.SetCwdAsync(2, await vfs.HostOf("/w"));

        Assert.Equal(0, await vfs.Change(NameOp.Rename, "/w", "/v"));

        Assert.Equal(new CwdResult(0, "/v/src"), await server.GetCwdAsync(1));
        Assert.Equal(new CwdResult(0, "/v"), await server.GetCwdAsync(2));
        var f = await vfs.Stat("f");
        Assert.Equal((0, "/v/src/f"), (f.Errno, f.GuestPath));
        // The old name is free again: a new directory there is nobody's cwd.
        Assert.Equal(0, await vfs.Mkdir("/w"));
        Assert.Equal(new CwdResult(0, "/v/src"), await server.GetCwdAsync(1));
    }

    [Fact]
    public async Task The_server_shares_a_cwd_only_with_clone_fs()
    {
        using var vfs = new VfsHarness();
        vfs.LowerDir("tmp");
        var server = await vfs.Start();
        await server.ProcessCreatedAsync(1, 2, shareFs: true);
        await server.ProcessCreatedAsync(2, 3, shareFs: false);

        await server.SetCwdAsync(2, vfs.LowerPath("tmp"));
        await server.ProcessExitedAsync(2);

        Assert.Equal(new CwdResult(0, "/tmp"), await server.GetCwdAsync(1));
        Assert.Equal(new CwdResult(0, "/"), await server.GetCwdAsync(3));
        Assert.Equal(new CwdResult(Errno.ESRCH, null), await server.GetCwdAsync(2));
        await Assert.ThrowsAsync<LocalRpcException>(() => server.ProcessCreatedAsync(1, 3, shareFs: false));
        await Assert.ThrowsAsync<LocalRpcException>(() => server.SetCwdAsync(1, "relative"));
    }

    /// <summary>An absolute path of exactly <paramref name="bytes"/> bytes, in components of at most 100.</summary>
    internal static string LongPath(int bytes)
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
