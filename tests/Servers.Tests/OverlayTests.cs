using UmlMicro.Contracts.Linux;
using UmlMicro.Contracts.Servers;

namespace UmlMicro.ServersTests;

/// <summary>
/// The copy-on-write root on real directories: the lower layer is never written, every change lands in the upper
/// layer, removed lower names are whiteouts that survive a restart (the journal), and the errno of each refusal is
/// the one overlayfs gives.
/// </summary>
public sealed class OverlayTests : IDisposable
{
    private const int O_RDONLY = 0;
    private readonly VfsHarness _vfs = new();

    public void Dispose() => _vfs.Dispose();

    [Fact]
    public async Task A_write_copies_the_file_up_and_leaves_the_lower_one_untouched()
    {
        string lower = _vfs.Lower("etc/conf", "original\n");

        await _vfs.Write("/etc/conf", "changed\n", truncate: false);

        Assert.Equal("original\n", File.ReadAllText(lower));
        Assert.Equal("original\nchanged\n", await _vfs.Read("/etc/conf"));
        Assert.NotEqual(lower, await _vfs.HostOf("/etc/conf"));
        Assert.StartsWith(_vfs.StateDir + "/", await _vfs.HostOf("/etc/conf"));
    }

    [Fact]
    public async Task A_read_only_open_does_not_copy_up()
    {
        string lower = _vfs.Lower("etc/conf", "original\n");

        Assert.Equal(lower, await _vfs.HostOf("/etc/conf", PathOp.Open, O_RDONLY));
        Assert.Equal(lower, await _vfs.HostOf("/etc/conf", PathOp.Stat));
    }

    [Fact]
    public async Task Truncate_and_chmod_copy_up_first()
    {
        string a = _vfs.Lower("a", "aaaa");
        string b = _vfs.Lower("b", "bbbb");
        File.SetUnixFileMode(b, UnixFileMode.UserRead | UnixFileMode.UserWrite);

        string truncated = await _vfs.HostOf("/a", PathOp.Open, LinuxFlags.O_WRONLY | LinuxFlags.O_TRUNC);
        string chmodded = await _vfs.HostOf("/b", PathOp.Modify);

        Assert.NotEqual(a, truncated);
        Assert.Equal("", File.ReadAllText(truncated));
        Assert.Equal("aaaa", File.ReadAllText(a));
        Assert.NotEqual(b, chmodded);
        Assert.Equal("bbbb", File.ReadAllText(chmodded)); // chmod keeps the contents
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(chmodded)); // and the mode, until the host changes it
        File.SetUnixFileMode(chmodded, UnixFileMode.UserExecute | UnixFileMode.UserRead);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(b));
        Assert.Equal(chmodded, await _vfs.HostOf("/b"));
    }

    [Fact]
    public async Task An_unlinked_lower_file_is_whited_out_in_lookup_and_listing()
    {
        string lower = _vfs.Lower("d/gone", "x");
        _vfs.Lower("d/kept", "y");

        Assert.Equal(0, await _vfs.Change(NameOp.Unlink, "/d/gone"));

        Assert.True(File.Exists(lower));
        Assert.Equal(Errno.ENOENT, (await _vfs.Stat("/d/gone")).Errno);
        Assert.Equal(["kept"], await _vfs.List("/d"));
        Assert.Equal(Errno.ENOENT, await _vfs.Change(NameOp.Unlink, "/d/gone"));
    }

    [Fact]
    public async Task Whiteouts_are_replayed_from_the_journal_by_a_new_server()
    {
        _vfs.KeptUpper = Path.Combine(_vfs.Base, "kept-upper");
        _vfs.Lower("d/gone", "x");
        _vfs.Lower("d/kept", "y");
        _vfs.Lower("olddir/inner", "z");
        Assert.Equal(0, await _vfs.Change(NameOp.Unlink, "/d/gone"));
        Assert.Equal(0, await _vfs.Change(NameOp.Unlink, "/olddir/inner"));
        Assert.Equal(0, await _vfs.Change(NameOp.Rmdir, "/olddir"));
        Assert.Equal(0, await _vfs.Mkdir("/olddir"));
        await _vfs.Write("/d/new", "n");

        await _vfs.Restart();

        Assert.Equal(Errno.ENOENT, (await _vfs.Stat("/d/gone")).Errno);
        Assert.Equal(["kept", "new"], await _vfs.List("/d"));
        Assert.Equal("n", await _vfs.Read("/d/new"));
        Assert.Empty(await _vfs.List("/olddir")); // still opaque
        Assert.Equal(Errno.ENOENT, (await _vfs.Stat("/olddir/inner")).Errno);
        // The journal itself is not a name the guest has.
        Assert.DoesNotContain(await _vfs.List("/"), n => n.StartsWith(".umlmicro", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Whiteouts_of_names_of_any_bytes_are_replayed_too()
    {
        // A name holding a newline (the journal's separator), and one standing for bytes that are not UTF-8.
        _vfs.KeptUpper = Path.Combine(_vfs.Base, "kept-upper");
        _vfs.Lower("d/a\nb", "x");
        _vfs.Lower("d/a", "y");
        _vfs.Lower("d/b", "z");
        string raw = "c" + PathBytes.Decode([0xE9, 0xFF]);
        string rawHost = _vfs.LowerPath("d/" + raw);
        Assert.Equal(0, UmlMicro.Servers.Vfs.Native.HostFs.CreateEmpty(rawHost)); // the bytes c\xe9\xff, not their UTF-8
        try
        {
            Assert.Equal(0, (await _vfs.Stat("/d/" + raw)).Errno);
            Assert.Equal(0, await _vfs.Change(NameOp.Unlink, "/d/a\nb"));
            Assert.Equal(0, await _vfs.Change(NameOp.Unlink, "/d/" + raw));

            await _vfs.Restart();

            Assert.Equal(Errno.ENOENT, (await _vfs.Stat("/d/a\nb")).Errno);
            Assert.Equal(Errno.ENOENT, (await _vfs.Stat("/d/" + raw)).Errno);
            Assert.Equal(0, (await _vfs.Stat("/d/a")).Errno);
            Assert.Equal(0, (await _vfs.Stat("/d/b")).Errno);
            Assert.Equal(["a", "b"], await _vfs.List("/d"));
        }
        finally
        {
            UmlMicro.Servers.Vfs.Native.HostFs.Unlink(rawHost);
        }
    }

    [Fact]
    public async Task Rmdir_of_a_merged_directory_with_entries_is_ENOTEMPTY()
    {
        _vfs.Lower("d/lower-file", "x");
        Assert.Equal(0, await _vfs.Mkdir("/e"));
        await _vfs.Write("/e/upper-file", "y");

        Assert.Equal(Errno.ENOTEMPTY, await _vfs.Change(NameOp.Rmdir, "/d"));
        Assert.Equal(Errno.ENOTEMPTY, await _vfs.Change(NameOp.Rmdir, "/e"));
        Assert.Equal(0, await _vfs.Change(NameOp.Unlink, "/d/lower-file"));
        Assert.Equal(0, await _vfs.Change(NameOp.Rmdir, "/d"));
        Assert.Equal(Errno.ENOENT, (await _vfs.Stat("/d")).Errno);
        Assert.True(Directory.Exists(_vfs.LowerPath("d")));
    }

    [Fact]
    public async Task Unlink_and_rmdir_fail_as_Linux_fails_them()
    {
        _vfs.Lower("d/f", "x");
        _vfs.LowerDir("empty");

        Assert.Equal(Errno.EISDIR, await _vfs.Change(NameOp.Unlink, "/d"));
        Assert.Equal(Errno.ENOTDIR, await _vfs.Change(NameOp.Rmdir, "/d/f"));
        Assert.Equal(Errno.ENOENT, await _vfs.Change(NameOp.Rmdir, "/nothing"));
        Assert.Equal(Errno.EINVAL, await _vfs.Change(NameOp.Rmdir, "/empty/."));
    }

    [Fact]
    public async Task A_lower_file_can_be_renamed_a_lower_directory_is_EXDEV()
    {
        string lower = _vfs.Lower("a/f", "content");
        _vfs.Lower("dir/inner", "i");

        Assert.Equal(0, await _vfs.Change(NameOp.Rename, "/a/f", "/a/g"));
        Assert.Equal(Errno.EXDEV, await _vfs.Change(NameOp.Rename, "/dir", "/dir2"));

        Assert.Equal(Errno.ENOENT, (await _vfs.Stat("/a/f")).Errno);
        Assert.Equal("content", await _vfs.Read("/a/g"));
        Assert.Equal(["g"], await _vfs.List("/a"));
        Assert.True(File.Exists(lower));
        Assert.Equal("i", await _vfs.Read("/dir/inner"));
        Assert.Equal(Errno.ENOENT, (await _vfs.Stat("/dir2")).Errno);
    }

    [Fact]
    public async Task A_directory_made_in_the_upper_layer_can_be_renamed()
    {
        Assert.Equal(0, await _vfs.Mkdir("/new"));
        await _vfs.Write("/new/f", "x");

        Assert.Equal(0, await _vfs.Change(NameOp.Rename, "/new", "/moved"));

        Assert.Equal("x", await _vfs.Read("/moved/f"));
        Assert.Equal(Errno.ENOENT, (await _vfs.Stat("/new")).Errno);
        Assert.Equal(Errno.EINVAL, await _vfs.Change(NameOp.Rename, "/moved", "/moved/sub"));
    }

    [Fact]
    public async Task A_hard_link_to_a_lower_file_shares_the_copied_up_inode()
    {
        string lower = _vfs.Lower("f", "data");

        Assert.Equal(0, await _vfs.Change(NameOp.Link, "/f", "/g"));

        string f = await _vfs.HostOf("/f"), g = await _vfs.HostOf("/g");
        Assert.NotEqual(lower, f);
        Assert.Equal(2, LinkCount(f));
        Assert.Equal(2, LinkCount(g));
        Assert.Equal(1, LinkCount(lower));
        await _vfs.Write("/g", "more", truncate: false);
        Assert.Equal("datamore", await _vfs.Read("/f"));
        Assert.Equal(Errno.EEXIST, await _vfs.Change(NameOp.Link, "/f", "/g"));
        Assert.Equal(0, await _vfs.Change(NameOp.Unlink, "/f"));
        Assert.Equal(1, LinkCount(await _vfs.HostOf("/g")));
    }

    [Fact]
    public async Task A_directory_made_over_a_whited_out_one_is_opaque()
    {
        _vfs.Lower("d/old", "x");
        Assert.Equal(0, await _vfs.Change(NameOp.Unlink, "/d/old"));
        Assert.Equal(0, await _vfs.Change(NameOp.Rmdir, "/d"));

        var create = await _vfs.Resolve("/d", PathOp.Create, follow: false);
        Assert.Equal(0, create.Errno);
        Assert.True(create.CommitOnSuccess, "a name that was whited out must be committed after the host made it");
        Directory.CreateDirectory(create.HostPath!);
        await _vfs.Server.CreatedAsync("/d");

        Assert.Empty(await _vfs.List("/d"));
        Assert.Equal(Errno.ENOENT, (await _vfs.Stat("/d/old")).Errno);
        Assert.True(File.Exists(_vfs.LowerPath("d/old")));
    }

    [Fact]
    public async Task A_created_name_hides_nothing_and_is_listed_with_the_lower_ones()
    {
        _vfs.Lower("d/a", "1");
        await _vfs.Write("/d/b", "2");
        Assert.Equal(0, await _vfs.Change(NameOp.Symlink, "/d/c", target: "a"));

        Assert.Equal(["a", "b", "c"], await _vfs.List("/d"));
        Assert.Equal("1", await _vfs.Read("/d/c"));
        Assert.False(File.Exists(_vfs.LowerPath("d/b")));
        Assert.Equal(Errno.EEXIST, (await _vfs.Resolve("/d/a", PathOp.Create, follow: false)).Errno);
        Assert.Equal(Errno.EEXIST, (await _vfs.Resolve("/d/a", PathOp.Open, LinuxFlags.O_CREAT | LinuxFlags.O_EXCL | LinuxFlags.O_WRONLY)).Errno);
    }

    [Fact]
    public async Task A_write_to_a_directory_is_EISDIR_and_creating_under_a_file_is_ENOTDIR()
    {
        _vfs.Lower("d/f", "x");

        Assert.Equal(Errno.EISDIR, (await _vfs.Resolve("/d", PathOp.Open, LinuxFlags.O_WRONLY)).Errno);
        Assert.Equal(Errno.ENOTDIR, (await _vfs.Resolve("/d/f/new", PathOp.Open, LinuxFlags.O_WRONLY | LinuxFlags.O_CREAT)).Errno);
        Assert.Equal(Errno.ENOENT, (await _vfs.Resolve("/d/nodir/new", PathOp.Open, LinuxFlags.O_WRONLY | LinuxFlags.O_CREAT)).Errno);
    }

    private static long LinkCount(string path)
    {
        using var stat = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("stat", ["-c", "%h", path]) { RedirectStandardOutput = true })!;
        string text = stat.StandardOutput.ReadToEnd();
        stat.WaitForExit();
        return long.Parse(text.Trim(), System.Globalization.CultureInfo.InvariantCulture);
    }
}
