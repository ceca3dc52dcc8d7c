namespace UmlMicro.Tests.Integration;

/// <summary>
/// Every failure a program can meet in the namespace gives the errno Linux gives: one python probe runs natively
/// in a fresh directory and as a guest with --isolate over an identical one (so that every file it starts with
/// is in the read-only lower layer and every change goes through copy-up, whiteouts and the VFS's own
/// unlink/rename/link), and the two outputs must be the same.
/// </summary>
public sealed class VfsErrnoTests : IDisposable
{
    private readonly TempDir _native = new();
    private readonly TempDir _guest = new();

    public void Dispose()
    {
        _native.Dispose();
        _guest.Dispose();
    }

    private static void Prepare(TempDir dir)
    {
        dir.Write("file", "0123456789\n");
        dir.Write("other", "other\n");
        dir.Write("dir/inner", "inner\n");
        dir.Write("dir/sub/deep", "deep\n");
        dir.MakeDir("empty");
        File.CreateSymbolicLink(dir.File("loop1"), "loop2");
        File.CreateSymbolicLink(dir.File("loop2"), "loop1");
        File.CreateSymbolicLink(dir.File("to-file"), "file");
        File.CreateSymbolicLink(dir.File("dangling"), "nowhere");
        File.SetUnixFileMode(dir.File("file"), (UnixFileMode)0x1A4);
    }

    private const string Probe = """
        import errno, os, stat
        def t(name, fn):
            try:
                r = fn()
                print(name, "ok" if r is None else r)
            except OSError as e:
                print(name, errno.errorcode[e.errno])
        W = os.O_WRONLY
        t("open missing", lambda: os.open("missing", os.O_RDONLY) and None)
        t("open file/x", lambda: os.open("file/x", os.O_RDONLY) and None)
        t("create under file", lambda: os.open("file/x", W | os.O_CREAT) and None)
        t("create in missing dir", lambda: os.open("nodir/x", W | os.O_CREAT) and None)
        t("open dir for write", lambda: os.open("dir", W) and None)
        t("open dir O_RDWR", lambda: os.open("dir", os.O_RDWR) and None)
        t("O_DIRECTORY on file", lambda: os.open("file", os.O_RDONLY | os.O_DIRECTORY) and None)
        t("trailing slash on file", lambda: os.stat("file/"))
        t("O_CREAT|O_EXCL existing", lambda: os.open("file", W | os.O_CREAT | os.O_EXCL) and None)
        t("O_CREAT|O_EXCL on symlink", lambda: os.open("dangling", W | os.O_CREAT | os.O_EXCL) and None)
        t("O_NOFOLLOW on symlink", lambda: os.open("to-file", os.O_RDONLY | os.O_NOFOLLOW) and None)
        t("loop", lambda: os.stat("loop1"))
        t("loop in the middle", lambda: os.stat("loop2/x"))
        t("create through loop", lambda: os.open("loop1", W | os.O_CREAT) and None)
        t("lstat loop", lambda: stat.S_ISLNK(os.lstat("loop1").st_mode))
        t("name 255", lambda: os.stat("n" * 255))
        t("name 256", lambda: os.stat("n" * 256))
        t("create name 256", lambda: os.open("n" * 256, W | os.O_CREAT) and None)
        t("path 4096", lambda: os.stat("/".join(["d" * 99] * 41)[:4096]))
        t("mkdir existing", lambda: os.mkdir("dir"))
        t("mkdir existing file", lambda: os.mkdir("file"))
        t("mkdir in missing", lambda: os.mkdir("nodir/x"))
        t("rmdir non-empty lower", lambda: os.rmdir("dir"))
        t("rmdir file", lambda: os.rmdir("file"))
        t("rmdir missing", lambda: os.rmdir("missing"))
        t("rmdir dot", lambda: os.rmdir("empty/."))
        t("rmdir dotdot", lambda: os.rmdir("empty/.."))
        t("unlink dir", lambda: os.unlink("dir"))
        t("unlink missing", lambda: os.unlink("missing"))
        t("unlink trailing slash", lambda: os.unlink("file/"))
        t("readlink file", lambda: os.readlink("file"))
        t("readlink dangling", lambda: os.readlink("dangling"))
        t("stat dangling", lambda: os.stat("dangling"))
        t("chdir file", lambda: os.chdir("file"))
        t("chdir missing", lambda: os.chdir("missing"))
        t("link existing", lambda: os.link("file", "other"))
        t("link dir", lambda: os.link("dir", "dir-link"))
        t("link missing", lambda: os.link("missing", "x"))
        t("symlink existing", lambda: os.symlink("x", "file"))
        t("rename missing", lambda: os.rename("missing", "x"))
        t("rename into missing dir", lambda: os.rename("other", "nodir/x"))
        t("rename file over dir", lambda: os.rename("other", "empty"))
        t("rename dir into itself", lambda: os.rename("empty", "empty/sub"))
        # Directories made during the run, in the upper layer.
        os.makedirs("new/a/b"); os.makedirs("new2/c")
        t("rename dir over file", lambda: os.rename("new", "other"))
        t("rename dir over non-empty dir", lambda: os.rename("new", "new2"))
        t("rename dir over empty dir", lambda: os.rename("new2/c", "new/a/b"))
        t("rmdir non-empty upper", lambda: os.rmdir("new"))
        t("listing", lambda: sorted(os.listdir("new/a")))
        # Copy-on-write of lower files, seen through stat.
        with open("file", "a") as f: f.write("more\n")
        t("size after append", lambda: os.stat("file").st_size)
        os.truncate("file", 4)
        t("size after truncate", lambda: (os.stat("file").st_size, open("file").read()))
        os.chmod("file", 0o600)
        t("mode after chmod", lambda: oct(stat.S_IMODE(os.stat("file").st_mode)))
        os.link("file", "file-link")
        t("nlink after link", lambda: (os.stat("file").st_nlink, os.stat("file-link").st_nlink))
        os.unlink("file-link")
        t("nlink after unlink", lambda: os.stat("file").st_nlink)
        os.rename("other", "renamed")
        t("after rename", lambda: (os.path.exists("other"), open("renamed").read()))
        os.unlink("dir/inner")
        t("after unlink", lambda: (os.path.exists("dir/inner"), sorted(os.listdir("dir"))))
        os.unlink("dir/sub/deep"); os.rmdir("dir/sub")
        t("rmdir emptied lower", lambda: os.rmdir("dir"))
        t("gone", lambda: os.path.exists("dir"))
        os.mkdir("dir")
        t("remade dir is empty", lambda: os.listdir("dir"))
        t("symlink then read", lambda: (os.symlink("renamed", "sl"), os.readlink("sl"), open("sl").read()))
        t("final listing", lambda: sorted(os.listdir(".")))
        t("dir nlink", lambda: os.stat("new").st_nlink)
        os.mkdir("empty/x")
        t("lower dir nlink after mkdir", lambda: os.stat("empty").st_nlink)
        t("access W_OK lower", lambda: os.access("to-file", os.W_OK))
        with open("to-file", "w") as f: f.write("through link\n")
        t("write through symlink", lambda: (os.readlink("to-file"), open("file").read()))
        os.utime("renamed", (1000000000, 1000000000))
        t("utime", lambda: int(os.stat("renamed").st_mtime))
        os.rename("renamed", "file")
        t("rename over lower file", lambda: (open("file").read(), os.path.exists("renamed")))
        t("dir fd walk", lambda: (lambda d: (sorted(os.listdir(d)), os.stat("x", dir_fd=d).st_nlink))(os.open("empty", os.O_RDONLY)))
        t("final listing 2", lambda: sorted(os.listdir(".")))
        """;

    [Fact]
    public void Errors_and_copy_on_write_changes_are_as_natively()
    {
        Prepare(_native);
        Prepare(_guest);

        var native = GuestRunner.Native(_native.Path, Tools.Python3, "-c", Probe);
        var guest = GuestRunner.Run(_guest.Path, ["--isolate"], Tools.Python3, "-c", Probe);

        Expect.ExitCode(0, native);
        Expect.SameAsNative(native, guest);
        // And the host's files did not change under the guest.
        Assert.Equal("0123456789\n", File.ReadAllText(_guest.File("file")));
        Assert.True(File.Exists(_guest.File("dir/inner")));
        Assert.False(Directory.Exists(_guest.File("new")));
    }

    [Fact]
    public void Link_across_mounts_is_EXDEV_even_for_a_directory()
    {
        const string probe = """
            import errno, os
            for a, b in (("/tmp", "/dev/shm/x"), ("/etc/hostname", "/dev/shm/y")):
                try:
                    os.link(a, b)
                except OSError as e:
                    print(errno.errorcode[e.errno])
            """;
        Expect.SameAsNative(GuestRunner.Native(_native.Path, Tools.Python3, "-c", probe), GuestRunner.Run(_guest.Path, Tools.Python3, "-c", probe));
    }
}
