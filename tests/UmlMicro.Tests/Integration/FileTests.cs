namespace UmlMicro.Tests.Integration;

/// <summary>Paths, directories and files, through busybox, coreutils and python: the same as natively.</summary>
public sealed class FileTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private void SameAsNative(string program, params string[] args) =>
        Expect.SameAsNative(GuestRunner.Native(_dir.Path, program, args), GuestRunner.Run(_dir.Path, program, args));

    /// <summary>A small tree: files of several sizes, a subfolder, a symlink to each, a dotfile.</summary>
    private string PrepareTree()
    {
        var root = _dir.MakeDir("tree");
        _dir.Write("tree/empty", "");
        _dir.Write("tree/small.txt", "hello\n");
        _dir.Write("tree/big.bin", new string('x', 70000));
        _dir.Write("tree/.hidden", "secret\n");
        _dir.Write("tree/sub/inner.txt", "inner\n");
        File.CreateSymbolicLink(Path.Combine(root, "link-to-small"), "small.txt");
        File.CreateSymbolicLink(Path.Combine(root, "link-to-sub"), "sub");
        File.CreateSymbolicLink(Path.Combine(root, "dangling"), "nowhere");
        return root;
    }

    [Fact]
    public void Coreutils_ls_la_lists_a_folder_as_natively()
    {
        PrepareTree();
        SameAsNative("ls", "-la", "tree");
    }

    [Fact]
    public void Busybox_ls_la_lists_a_folder_as_natively()
    {
        PrepareTree();
        SameAsNative(Tools.Busybox, "ls", "-la", "tree");
    }

    [Fact]
    public void Ls_of_a_missing_path_fails_as_natively()
    {
        var native = GuestRunner.Native(_dir.Path, "ls", "no-such-file");
        Expect.ExitCode(2, native);
        var guest = GuestRunner.Run(_dir.Path, "ls", "no-such-file");
        Expect.SameAsNative(native, guest);
        Assert.Equal(native.Stderr, guest.Stderr);
    }

    [Fact]
    public void Find_walks_a_tree_with_symlinks_as_natively()
    {
        PrepareTree();
        SameAsNative("sh", "-c", "find tree | sort; find -L tree -type f 2>&1 | sort; stat -c '%n %s %F' tree/* | sort");
    }

    [Fact]
    public void Busybox_pipeline_seq_sort_head()
    {
        var guest = GuestRunner.Run(_dir.Path, Tools.Busybox, "sh", "-c", "seq 1 1000 | sort -r | head -3");
        Expect.Success("999\n998\n997\n", guest);
        Expect.SameAsNative(GuestRunner.Native(_dir.Path, Tools.Busybox, "sh", "-c", "seq 1 1000 | sort -r | head -3"), guest);
    }

    [Fact]
    public void Busybox_pipeline_numeric_sort_and_applets()
    {
        const string script = "seq 1 1000 | sort -rn | head -3; seq 1 500 | awk '{s+=$1} END {print s}'; " +
                              "echo b a c | tr ' ' '\\n' | sort | xargs echo; printf 'x\\ny\\n' | wc -l; " +
                              "echo hello | sed s/l/L/g; seq 3 | tac 2>/dev/null || seq 3 | sort -rn";
        var guest = GuestRunner.Run(_dir.Path, Tools.Busybox, "sh", "-c", script);
        Expect.ExitCode(0, guest);
        Assert.StartsWith("1000\n999\n998\n125250\na b c\n2\nheLLo\n", guest.Stdout);
        Expect.SameAsNative(GuestRunner.Native(_dir.Path, Tools.Busybox, "sh", "-c", script), guest);
    }

    [Fact]
    public void Coreutils_sort_uniq_wc_on_a_file_and_on_stdin_as_natively()
    {
        var words = string.Join("\n", Enumerable.Range(0, 3000).Select(i => $"word{i * 7919 % 211}")) + "\n";
        _dir.Write("words.txt", words);
        SameAsNative("sh", "-c", "sort words.txt | uniq -c | sort -k1,1nr -k2 | head -5; wc -l -w -c words.txt; sort -u words.txt | wc -l");

        var spec = new RunSpec(_dir.Path, "sort", ["-r"]) { Stdin = "pear\napple\nfig\n" };
        var guest = GuestRunner.Run(spec);
        Expect.Success("pear\nfig\napple\n", guest);
        Expect.SameAsNative(GuestRunner.Native(spec), guest);
        var wc = new RunSpec(_dir.Path, "wc", ["-l"]) { Stdin = words };
        Expect.SameAsNative(GuestRunner.Native(wc), GuestRunner.Run(wc));
    }

    [Fact]
    public void A_guest_creates_renames_and_removes_files_as_natively()
    {
        const string script = "mkdir -p out/a/b && echo one > out/a/b/f && cat out/a/b/f && mv out/a/b/f out/g && " +
                              "ln -s g out/h && readlink out/h && cat out/h && ls -R out | sort && rm -r out && ls -A";
        var native = GuestRunner.Native(_dir.Path, "sh", "-c", script);
        Expect.ExitCode(0, native);
        Expect.SameAsNative(native, GuestRunner.Run(_dir.Path, "sh", "-c", script));
        Assert.Empty(Directory.GetFileSystemEntries(_dir.Path));
    }

    [Fact]
    public void Getcwd_after_cd_through_a_symlink_is_as_natively()
    {
        _dir.MakeDir("real/inside");
        File.CreateSymbolicLink(_dir.File("link"), "real");
        var py = Tools.Python3;
        var script = $"cd link/inside && /bin/pwd -P && /bin/pwd -L; pwd; {py} -c 'import os; print(os.getcwd())'; " +
                     $"cd ..; /bin/pwd; {py} -c 'import os; os.chdir(\"../link\"); print(os.getcwd()); print(os.path.realpath(\".\"))'";
        var native = GuestRunner.Native(_dir.Path, "sh", "-c", script);
        Assert.Contains("/real/inside\n", native.Stdout);
        Expect.SameAsNative(native, GuestRunner.Run(_dir.Path, "sh", "-c", script));
        Expect.SameAsNative(GuestRunner.Native(_dir.Path, Tools.Busybox, "sh", "-c", "cd link/inside && pwd -P && pwd"),
                            GuestRunner.Run(_dir.Path, Tools.Busybox, "sh", "-c", "cd link/inside && pwd -P && pwd"));
    }

    [Fact]
    public void Getcwd_of_a_deleted_directory_is_as_natively()
    {
        var py = Tools.Python3;
        var script = $"mkdir gone && cd gone && rmdir ../gone && {py} -c 'import os\ntry:\n  print(os.getcwd())\nexcept OSError as e:\n  print(\"error\", e.errno)'";
        Expect.SameAsNative(GuestRunner.Native(_dir.Path, "sh", "-c", script), GuestRunner.Run(_dir.Path, "sh", "-c", script));
    }

    [Fact]
    public void Relative_paths_resolve_against_the_guests_cwd_after_chdir()
    {
        PrepareTree();
        var py = Tools.Python3;
        var script = $"cd tree/sub && cat inner.txt ../small.txt && {py} -c 'import os; os.chdir(\"..\"); print(open(\"link-to-sub/inner.txt\").read(), end=\"\"); print(sorted(os.listdir(\".\")))'";
        var native = GuestRunner.Native(_dir.Path, "sh", "-c", script);
        Assert.StartsWith("inner\nhello\ninner\n", native.Stdout);
        Expect.SameAsNative(native, GuestRunner.Run(_dir.Path, "sh", "-c", script));
    }

    [Fact]
    public void Dev_null_and_pipes_between_guest_processes_work()
    {
        SameAsNative("sh", "-c", "echo lost > /dev/null; head -c 100000 /dev/zero | wc -c; yes | head -5 | tr y n; cat < /dev/null | wc -l");
    }
}
