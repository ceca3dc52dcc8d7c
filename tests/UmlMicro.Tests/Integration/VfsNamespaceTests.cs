namespace UmlMicro.Tests.Integration;

/// <summary>
/// The guest's namespace as a user meets it: the host's / under a private copy-on-write layer (nothing of the host
/// changes except the current directory, which is bound writable unless --isolate), and --keep-changes, --tmpfs
/// and --bind. Lower-layer files live in a temp directory outside the guest's cwd, made before the run.
/// </summary>
public sealed class VfsNamespaceTests : IDisposable
{
    private readonly TempDir _cwd = new();
    private readonly TempDir _lower = new();

    public void Dispose()
    {
        _cwd.Dispose();
        _lower.Dispose();
    }

    [Fact]
    public void A_write_to_etc_stays_in_the_guest_and_a_file_in_the_cwd_reaches_the_host()
    {
        const string probe = "/etc/umlmicro-probe";
        Assert.False(File.Exists(probe), $"{probe} exists on the host before the test");

        var r = GuestRunner.Run(_cwd.Path, "/bin/sh", "-c", $"echo x > {probe}; cat {probe}; echo kept > here.txt; cut -d' ' -f2-4 /proc/mounts | grep -F \"$PWD \"");

        Expect.Success($"x\n{_cwd.Path} hostfs rw,relatime\n", r);
        Assert.False(File.Exists(probe), $"the guest wrote the host's {probe}");
        Assert.Equal("kept\n", File.ReadAllText(_cwd.File("here.txt")));
    }

    [Fact]
    public void With_isolate_nothing_the_guest_writes_reaches_the_host()
    {
        var r = GuestRunner.Run(_cwd.Path, ["--isolate"], "/bin/sh", "-c", "echo gone > here.txt; cat here.txt; pwd");

        Expect.Success($"gone\n{_cwd.Path}\n", r);
        Assert.False(File.Exists(_cwd.File("here.txt")), "with --isolate a file written in the cwd reached the host");
    }

    [Fact]
    public void Lower_files_are_changed_only_in_the_guests_view()
    {
        _lower.Write("f", "original\n");
        _lower.Write("d/a", "aaaa\n");
        _lower.Write("d/b", "bbbb\n");
        _lower.Write("d/c", "cccc\n");
        _lower.Write("d/sub/inner", "inner\n");
        File.SetUnixFileMode(_lower.File("f"), (UnixFileMode)0x1A4); // 0644
        string L = _lower.Path;
        string script = $"""
            L={L}
            echo more >> $L/f; cat $L/f; stat -c '%s %a %h' $L/f
            chmod 600 $L/f; stat -c '%a' $L/f
            : > $L/d/a; stat -c '%s' $L/d/a; truncate -s 2 $L/d/c; cat $L/d/c; echo
            rm $L/d/b; mv $L/d/c $L/d/c2; echo new > $L/d/new
            ls $L/d | tr '\n' ' '; echo
            cat $L/d/b 2>&1 | sed 's/^cat: //'
            ln $L/f $L/f2; stat -c '%h' $L/f $L/f2; echo linked >> $L/f2; tail -1 $L/f
            mv $L/d/sub $L/moved && cat $L/moved/inner && ls $L/d | tr '\n' ' '; echo
            mkdir -p /tmp/umlmicro-tree-$$/a/b/c && touch /tmp/umlmicro-tree-$$/a/b/c/x /tmp/umlmicro-tree-$$/a/y
            rm -rf /tmp/umlmicro-tree-$$ && ls /tmp/umlmicro-tree-$$ 2>&1 | sed 's/.*: //'
            find $L | sed "s|$L|L|" | sort | tr '\n' ' '; echo
            rmdir $L/d 2>&1 | sed 's/.*: //'
            rm $L/d/*; rmdir $L/d && ls $L | tr '\n' ' '; echo
            """;

        var r = GuestRunner.Run(_cwd.Path, "/bin/sh", "-c", script);

        Expect.Success(
            "original\nmore\n14 644 1\n" +
            "600\n" +
            "0\ncc\n" +
            "a c2 new sub \n" +
            $"{L}/d/b: No such file or directory\n" +
            "2\n2\nlinked\n" +
            "inner\na c2 new \n" +
            "No such file or directory\n" +
            "L L/d L/d/a L/d/c2 L/d/new L/f L/f2 L/moved L/moved/inner \n" +
            "Directory not empty\n" +
            "f f2 moved \n", r);
        // The host's files are as they were.
        Assert.Equal("original\n", File.ReadAllText(_lower.File("f")));
        Assert.Equal((UnixFileMode)0x1A4, File.GetUnixFileMode(_lower.File("f")));
        Assert.Equal(["a", "b", "c", "sub"], Directory.GetFileSystemEntries(_lower.File("d")).Select(Path.GetFileName).Order());
        Assert.Equal("aaaa\n", File.ReadAllText(_lower.File("d/a")));
        Assert.Equal("cccc\n", File.ReadAllText(_lower.File("d/c")));
        Assert.False(File.Exists(_lower.File("f2")));
    }

    [Fact]
    public void Keep_changes_tmpfs_and_a_read_only_bind_do_what_they_say()
    {
        string kept = Path.Combine(_lower.Path, "kept-upper");
        string bound = _lower.MakeDir("bound");
        _lower.Write("bound/f", "bound\n");
        _lower.Write("victim", "victim\n");
        string script = $"""
            echo kept > /etc/umlmicro-kept; rm {_lower.Path}/victim
            ls -A /scratch | wc -l; echo s > /scratch/s; cat /scratch/s
            cat /mnt/b/f; echo w > /mnt/b/f; echo w > /mnt/b/new; rm /mnt/b/f; mkdir /mnt/b/d
            grep -E ' /scratch | /mnt/b ' /proc/mounts
            """;

        var r = GuestRunner.Run(_cwd.Path, ["--keep-changes", kept, "--tmpfs", "/scratch", "--bind", $"{bound}:/mnt/b:ro"], "/bin/sh", "-c", script);

        Expect.ExitCode(0, r);
        Expect.Stdout($"0\ns\nbound\n{bound} /mnt/b hostfs ro,relatime 0 0\ntmpfs /scratch tmpfs rw,relatime 0 0\n", r);
        var errors = r.StderrLines;
        Assert.Equal(4, errors.Count(l => l.EndsWith("Read-only file system", StringComparison.Ordinal)));
        Assert.Equal("kept\n", File.ReadAllText(Path.Combine(kept, "etc/umlmicro-kept")));
        Assert.False(File.Exists("/etc/umlmicro-kept"));
        Assert.False(Directory.Exists("/scratch"), "the tmpfs mount point was made on the host");
        Assert.Equal(["f"], Directory.GetFileSystemEntries(bound).Select(Path.GetFileName));
        Assert.True(File.Exists(_lower.File("victim")));

        // A second run over the kept layer sees the changes, the whiteout too, and not the layer itself.
        var again = GuestRunner.Run(_cwd.Path, ["--keep-changes", kept], "/bin/sh", "-c",
            $"cat /etc/umlmicro-kept; cat {_lower.Path}/victim 2>&1 | sed 's/.*: //'; ls {kept} 2>&1 | sed 's/.*: //'");
        Expect.Success("kept\nNo such file or directory\nNo such file or directory\n", again);
    }

    [Fact]
    public void Changing_a_lower_file_through_a_read_only_fd_leaves_the_host_alone()
    {
        string file = _lower.Write("f", "orig\n");
        string dir = _lower.MakeDir("d");
        File.SetUnixFileMode(file, (UnixFileMode)0x1A4); // 0644
        File.SetLastWriteTimeUtc(file, new DateTime(2001, 1, 1, 0, 0, 0, DateTimeKind.Utc));
        var dirMode = File.GetUnixFileMode(dir);

        var r = GuestRunner.Run(_cwd.Path, Tools.Python3, "-c", $"""
            import os, stat
            fd = os.open("{file}", os.O_RDONLY)
            os.fchmod(fd, 0o600); os.utime(fd, (5, 5)); os.fchown(fd, 1, 1)
            d = os.open("{dir}", os.O_RDONLY | os.O_DIRECTORY)
            os.fchmod(d, 0o700)
            st = os.stat("{file}")
            print(oct(stat.S_IMODE(st.st_mode)), int(st.st_mtime), st.st_uid, oct(stat.S_IMODE(os.stat("{dir}").st_mode)))
            """);

        Expect.Success("0o600 5 1 0o700\n", r);
        Assert.Equal((UnixFileMode)0x1A4, File.GetUnixFileMode(file));
        Assert.Equal(new DateTime(2001, 1, 1, 0, 0, 0, DateTimeKind.Utc), File.GetLastWriteTimeUtc(file));
        Assert.Equal(dirMode, File.GetUnixFileMode(dir));
    }

    [Fact]
    public void Linkat_with_an_empty_path_links_inside_the_guest()
    {
        string name = $"/etc/umlmicro-linkat-{Guid.NewGuid():N}";
        try
        {
            var r = GuestRunner.Run(_cwd.Path, ["--isolate"], Tools.Python3, "-c", $"""
                import ctypes, os
                libc = ctypes.CDLL(None, use_errno=True)
                fd = os.open("/etc/hostname", os.O_RDONLY)
                rc = libc.linkat(fd, b"", -100, b"{name}", 0x1000)
                print(rc, os.path.exists("{name}") and open("{name}").read() == open("/etc/hostname").read())
                """);
            Expect.Success("0 True\n", r);
            Assert.False(File.Exists(name), $"the guest's link {name} is on the host");
        }
        finally
        {
            File.Delete(name);
        }
    }

    [Fact]
    public void A_unix_socket_bound_outside_the_cwd_stays_in_the_guest()
    {
        string name = $"/etc/umlmicro-sock-{Guid.NewGuid():N}";
        try
        {
            var r = GuestRunner.Run(_cwd.Path, Tools.Python3, "-c", $"""
                import os, socket
                s = socket.socket(socket.AF_UNIX)
                s.bind("{name}")
                print(s.getsockname(), os.path.exists("{name}"))
                """);
            Expect.Success($"{name} True\n", r);
            Assert.False(File.Exists(name), $"the guest's socket {name} is on the host");
        }
        finally
        {
            File.Delete(name);
        }
    }

    [Fact(Skip = "VFS bug: a directory fd lists the directory as it was when opened (lower dir or snapshot), not entries made or removed since")]
    public void A_directory_fd_lists_entries_made_after_it_was_opened()
    {
        _lower.Write("d/old", "");
        var r = GuestRunner.Run(_cwd.Path, Tools.Python3, "-c", $"""
            import os
            d = os.open("{_lower.Path}/d", os.O_RDONLY | os.O_DIRECTORY)
            open("{_lower.Path}/d/new", "w").close()
            os.unlink("{_lower.Path}/d/old")
            print(sorted(os.listdir(d)))
            """);
        Expect.Success("['new']\n", r);
    }
}
