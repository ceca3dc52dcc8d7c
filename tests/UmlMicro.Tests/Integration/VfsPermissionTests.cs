namespace UmlMicro.Tests.Integration;

/// <summary>
/// The VFS makes namespace changes as a privileged host process, so the guest's users and permissions are its to
/// enforce: a guest process that dropped to nobody must not create, remove or rename a name where it may not write,
/// may not walk through a directory it may not search, may not remove another user's file from a sticky directory,
/// and must get the errno Linux gives. One python probe, run as root, drops to uid 65534 and tries; natively, in the
/// cwd bind (the host's own directory) and with --isolate (every file in the read-only lower layer, every change
/// through the copy-on-write layer), the outputs must be the same, and the host's files must not change.
/// </summary>
public sealed class VfsPermissionTests : IDisposable
{
    private const int Nobody = 65534, Other = 2001;
    private readonly TempDir _native = new();
    private readonly TempDir _guest = new();
    private readonly TempDir _cow = new();

    public void Dispose()
    {
        _native.Dispose();
        _guest.Dispose();
        _cow.Dispose();
    }

    private static void Own(string path, int uid, int mode)
    {
        Assert.Equal(0, Native.lchown(path, (uint)uid, (uint)uid));
        File.SetUnixFileMode(path, (UnixFileMode)mode);
    }

    /// <summary>The tree the probe attacks: root's directories (0755 with files, 0700, 0555), a sticky one holding another
    /// user's file, and nobody's own.</summary>
    private static void Prepare(TempDir dir)
    {
        File.SetUnixFileMode(dir.Path, (UnixFileMode)0x1ED); // nobody must reach it, as /tmp's children natively
        dir.Write("rootdir/f", "root's\n");
        dir.Write("rootdir/sub/g", "g\n");
        dir.MakeDir("rootdir/empty");
        dir.Write("secret/key", "k\n");
        Own(dir.File("secret"), 0, 0x1C0);
        Own(dir.MakeDir("sticky"), 0, 0x3FF | 0x200);
        Own(dir.Write("sticky/others", "o\n"), Other, 0x1B6);
        Own(dir.MakeDir("sticky/othersdir"), Other, 0x1FF);
        Own(dir.MakeDir("mine"), Nobody, 0x1ED);
        Own(dir.Write("mine/x", "x\n"), Nobody, 0x1A4);
        Own(dir.MakeDir("mine/sub"), Nobody, 0x1ED);
        Own(dir.MakeDir("mine/frozen"), Nobody, 0x16D);
        Own(dir.Write("mine/frozen/y", "y\n"), Nobody, 0x1A4);
        Own(dir.File("mine"), Nobody, 0x1ED);
    }

    private const string Probe = """
        import errno, os, subprocess, sys
        def t(name, fn):
            try:
                r = fn()
                print(name, "ok" if r is None else r)
            except OSError as e:
                print(name, errno.errorcode[e.errno])
        def creat(p): os.close(os.open(p, os.O_CREAT | os.O_WRONLY, 0o644))
        if os.getuid() == 0:
            # access() asks with the real ids, a walk with the effective (fs) ones.
            os.setgroups([]); os.setresuid(0, 65534, 0)
            t("access as real root", lambda: os.access("secret/key", os.R_OK))
            t("access effective", lambda: os.access("secret/key", os.R_OK, effective_ids=True))
            t("stat as effective nobody", lambda: os.stat("secret/key").st_size)
            os.setresuid(0, 0, 0)
            os.setgid(65534); os.setuid(65534)
        t("uid", lambda: (os.getuid(), os.geteuid(), os.getgid()))
        # A directory of root's: nothing may be made, removed or renamed in it.
        t("rename in root's", lambda: os.rename("rootdir/f", "rootdir/g"))
        t("rename out of root's", lambda: os.rename("rootdir/f", "mine/f"))
        t("rename into root's", lambda: os.rename("mine/x", "rootdir/x"))
        t("unlink in root's", lambda: os.unlink("rootdir/f"))
        t("unlink missing in root's", lambda: os.unlink("rootdir/none"))
        t("unlink dir in root's", lambda: os.unlink("rootdir/sub"))
        t("rmdir in root's", lambda: os.rmdir("rootdir/empty"))
        t("rmdir file in root's", lambda: os.rmdir("rootdir/f"))
        t("creat in root's", lambda: creat("rootdir/new"))
        t("creat existing in root's", lambda: creat("rootdir/f"))
        t("mkdir in root's", lambda: os.mkdir("rootdir/nd"))
        t("mkdir existing in root's", lambda: os.mkdir("rootdir/sub"))
        t("mkfifo in root's", lambda: os.mkfifo("rootdir/fifo"))
        t("symlink in root's", lambda: os.symlink("f", "rootdir/sl"))
        t("link into root's", lambda: os.link("mine/x", "rootdir/x"))
        t("link root's file", lambda: os.link("rootdir/f", "mine/f"))
        t("open root's for writing", lambda: os.close(os.open("rootdir/f", os.O_WRONLY)))
        t("read root's", lambda: open("rootdir/f").read())
        # A directory nobody may not search: what is in it is EACCES, present or not.
        t("stat in 0700", lambda: os.stat("secret/key"))
        t("stat missing in 0700", lambda: os.stat("secret/none"))
        t("dotdot through 0700", lambda: os.stat("secret/../mine"))
        t("unlink in 0700", lambda: os.unlink("secret/key"))
        t("creat in 0700", lambda: creat("secret/new"))
        t("stat 0700 itself", lambda: oct(os.stat("secret").st_mode & 0o7777))
        t("listdir 0700", lambda: os.listdir("secret"))
        # The sticky bit: anyone makes names, only their owner (or the directory's) removes them.
        t("unlink other's in sticky", lambda: os.unlink("sticky/others"))
        t("rename other's in sticky", lambda: os.rename("sticky/others", "sticky/taken"))
        t("rmdir other's in sticky", lambda: os.rmdir("sticky/othersdir"))
        t("creat in sticky", lambda: creat("sticky/mine"))
        t("rename over other's in sticky", lambda: os.rename("sticky/mine", "sticky/others"))
        t("symlink in sticky", lambda: os.symlink("mine", "sticky/ln"))
        t("symlink owner", lambda: (os.lstat("sticky/ln").st_uid, os.lstat("sticky/ln").st_gid))
        t("unlink own in sticky", lambda: os.unlink("sticky/ln"))
        t("rename own in sticky", lambda: os.rename("sticky/mine", "sticky/mine2"))
        t("unlink own renamed", lambda: os.unlink("sticky/mine2"))
        # Its own directory: everything, except in the one it made read-only.
        t("creat in own", lambda: creat("mine/new"))
        t("rename in own", lambda: os.rename("mine/new", "mine/new2"))
        t("link in own", lambda: os.link("mine/new2", "mine/new3"))
        t("unlink in own", lambda: (os.unlink("mine/new2"), os.unlink("mine/new3"))[0])
        t("mkdir in own", lambda: os.mkdir("mine/d"))
        t("rmdir in own", lambda: os.rmdir("mine/d"))
        t("creat in 0555", lambda: creat("mine/frozen/new"))
        t("unlink in 0555", lambda: os.unlink("mine/frozen/y"))
        t("rename out of 0555", lambda: os.rename("mine/frozen/y", "mine/y"))
        t("rename 0555 dir to another parent", lambda: os.rename("mine/frozen", "mine/sub/frozen"))
        t("listing of own", lambda: sorted(os.listdir("mine")))
        # Programs still run through links with other names (/bin/sh is dash, python3 a versioned name).
        t("exec sh", lambda: subprocess.run(["/bin/sh", "-c", "echo sh ran as $(id -u)"], capture_output=True, text=True).stdout.strip())
        t("exec /usr/bin/python3", lambda: subprocess.run(["/usr/bin/python3", "-c", "print('py')"], capture_output=True, text=True).stdout.strip())
        t("exec sys.executable", lambda: subprocess.run([sys.executable, "-c", "print('py')"], capture_output=True, text=True).stdout.strip())
        t("final root's", lambda: sorted(os.listdir("rootdir")))
        t("final sticky", lambda: sorted(os.listdir("sticky")))
        """;

    private static string[] Tree(TempDir dir) =>
        Directory.EnumerateFileSystemEntries(dir.Path, "*", SearchOption.AllDirectories)
            .Select(p => Path.GetRelativePath(dir.Path, p)).Order(StringComparer.Ordinal).ToArray();

    [Fact]
    public void A_guest_process_that_dropped_to_nobody_is_refused_as_natively_in_the_cwd_bind_and_in_the_copy_on_write_layer()
    {
        if (Native.geteuid() != 0) return; // the probe changes its user: natively that takes root
        Prepare(_native);
        Prepare(_guest);
        Prepare(_cow);
        var before = Tree(_guest);

        var native = GuestRunner.Native(_native.Path, Tools.Python3, "-c", Probe);
        Expect.ExitCode(0, native);
        Assert.Contains("rename in root's EACCES", native.StdoutLines);
        Assert.Contains("unlink other's in sticky EPERM", native.StdoutLines);

        var bound = GuestRunner.Run(_guest.Path, Tools.Python3, "-c", Probe);
        Expect.SameAsNative(native, bound);
        Assert.Equal(Tree(_native), Tree(_guest));

        var cow = GuestRunner.Run(_cow.Path, ["--isolate"], Tools.Python3, "-c", Probe);
        Expect.SameAsNative(native, cow);
        Assert.Equal(before, Tree(_cow)); // every change went to the copy-on-write layer
        Assert.Equal("root's\n", File.ReadAllText(_cow.File("rootdir/f")));
    }

    [Fact]
    public void Umlmicro_run_by_nobody_refuses_its_guest_what_nobody_is_refused_natively()
    {
        if (Native.geteuid() != 0) return; // started as nobody with setpriv, natively and under umlmicro
        Prepare(_native);
        Prepare(_guest);
        string setpriv = Tools.Require("setpriv", "util-linux");
        string[] asNobody = ["--reuid=65534", "--regid=65534", "--clear-groups", "--"];
        var env = new Dictionary<string, string> { ["HOME"] = _guest.Path };

        var native = GuestRunner.Native(new RunSpec(_native.Path, setpriv, [.. asNobody, Tools.Python3, "-c", Probe]) { Environment = env });
        Expect.ExitCode(0, native);
        Assert.Contains("uid (65534, 65534, 65534)", native.StdoutLines);
        var guest = GuestRunner.Native(new RunSpec(_guest.Path, setpriv, [.. asNobody, GuestRunner.Supervisor, "run", "--", Tools.Python3, "-c", Probe])
        {
            Environment = env,
        });
        Expect.SameAsNative(native, guest);
        Assert.Equal(Tree(_native), Tree(_guest));
    }
}
