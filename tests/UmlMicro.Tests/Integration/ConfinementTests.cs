namespace UmlMicro.Tests.Integration;

/// <summary>
/// --root confines the guest to a directory tree: a static busybox in a small tree full of hostile symlinks
/// (escape -> /, up -> ../../.., links to the host directory that holds a secret, into /proc/self/root, a loop)
/// tries every way an attacker would to read a host file outside the tree.
/// </summary>
public sealed class ConfinementTests : IDisposable
{
    private const string Secret = "UMLMICRO-HOST-SECRET";
    private readonly TempDir _root = new();
    private readonly TempDir _outside = new();

    public ConfinementTests()
    {
        _outside.Write("secret", Secret + "\n");
        var bin = _root.MakeDir("bin");
        File.Copy(Tools.Busybox, Path.Combine(bin, "busybox"));
        File.CreateSymbolicLink(Path.Combine(bin, "sh"), "busybox");
        _root.MakeDir("tmp");
        _root.MakeDir("home/u");
        _root.Write("etc/hostname", "guest\n");
        Link("escape", "/");
        Link("up", "../../..");
        Link("home/u/up", "../../../../../..");
        Link("procroot", "/proc/self/root");
        Link("outside", _outside.Path);
        Link("secret-link", _outside.File("secret"));
        Link("loop-a", "loop-b");
        Link("loop-b", "loop-a");
        Link("self-loop", "self-loop");
    }

    private void Link(string name, string target) => File.CreateSymbolicLink(_root.File(name), target);

    public void Dispose()
    {
        _root.Dispose();
        _outside.Dispose();
    }

    private RunResult Busybox(string script) =>
        GuestRunner.Run(_outside.Path, ["--root", _root.Path], "/bin/busybox", "sh", "-c", script);

    [Fact]
    public void No_link_or_dot_dot_reads_a_host_file_outside_the_root()
    {
        string s = _outside.File("secret");
        string[] attempts =
        [
            s, "/escape" + s, "/up" + s, "/escape/escape/up" + s, "/home/u/up" + s, "/procroot" + s,
            "/proc/self/root" + s, "/proc/self/root/.." + s, "/proc/1/root" + s, "/proc/1/cwd/../../../.." + s,
            "/outside/secret", "/secret-link", "/escape/outside/secret", "/proc/self/root/secret-link",
            "../../../../../.." + s, "/dev/../.." + s, "/proc/../.." + s, "/proc/self/cwd/../../.." + s,
        ];
        string script = string.Join("\n", attempts.Select(a => $"cat '{a}' 2>/dev/null || echo 'denied {a}'")) + "\n" +
            // Directory moves: cd up as far as it goes, through the links and /proc, and look around.
            "cd /; cd ..; cd ../..; pwd; cd -P /up/up; pwd -P; cd -P /escape/..; pwd -P; cd -P /proc/self/root/..; pwd -P\n" +
            $"cd -P /home/u/up && cat .{s} 2>/dev/null || echo 'denied relative'\n" +
            "exec 3< /; cat /proc/self/fd/3/.." + s + " 2>/dev/null || echo 'denied fd'\n" +
            // Links the guest makes itself resolve inside the root too.
            $"ln -s {_outside.Path} /tmp/mine; ln -s ../../../../../../../..{_outside.Path} /tmp/rel; " +
            "cat /tmp/mine/secret /tmp/rel/secret 2>/dev/null || echo 'denied own links'\n" +
            $"find / -xdev -name secret 2>/dev/null; readlink -f /escape/up/procroot; realpath /home/u/up; ls /outside 2>&1 | sed 's/.*: //'";

        var r = Busybox(script);

        Assert.DoesNotContain(Secret, r.Stdout + r.Stderr);
        Expect.ExitCode(0, r);
        var expected = attempts.Select(a => $"denied {a}")
            .Concat(["/", "/", "/", "/", "denied relative", "denied fd", "denied own links", "/", "/", "No such file or directory"]);
        Assert.Equal(expected, r.StdoutLines);
    }

    [Fact]
    public void The_tree_is_the_guests_whole_world_and_symlink_loops_are_ELOOP()
    {
        var r = Busybox("cat /etc/hostname; ls / | tr '\\n' ' '; echo; cat /proc/1/root/etc/hostname; " +
                        "ls /usr /home/u/up/usr 2>&1 | sed 's/.*: //'; echo changed > /etc/hostname; cat /escape/etc/hostname; " +
                        "cat /loop-a; cat /loop-b/x; cat /self-loop; cd /loop-a; ls /self-loop/; echo > /loop-a");

        Assert.Equal("guest", r.StdoutLines[0]);
        Assert.Equal(["bin", "dev", "escape", "etc", "home", "loop-a", "loop-b", "outside", "proc", "procroot", "secret-link", "self-loop", "sys", "tmp", "up"],
            r.StdoutLines[1].Split(' ', StringSplitOptions.RemoveEmptyEntries));
        Assert.Equal(["guest", "No such file or directory", "No such file or directory", "changed"], r.StdoutLines[2..]);
        Assert.Equal("guest\n", File.ReadAllText(_root.File("etc/hostname")));
        Assert.True(r.StderrLines.Length == 6 && r.StderrLines.All(l => l.EndsWith("Too many levels of symbolic links", StringComparison.Ordinal)), r.ToString());
        Assert.Equal("loop-b", new FileInfo(_root.File("loop-a")).LinkTarget);
    }

    [Fact]
    public void A_unix_socket_outside_the_root_cannot_be_connected_to()
    {
        string client = CompileStatic("unix_sock", Path.Combine(_root.Path, "bin"));
        string socketPath = _outside.File("sock");
        using var listener = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Unspecified);
        listener.Bind(new System.Net.Sockets.UnixDomainSocketEndPoint(socketPath));
        listener.Listen(8);
        var server = Task.Run(() =>
        {
            try
            {
                while (true)
                {
                    using var peer = listener.Accept();
                    peer.Send(System.Text.Encoding.ASCII.GetBytes(Secret));
                }
            }
            catch (System.Net.Sockets.SocketException) { } // closed at the end of the test
            catch (ObjectDisposedException) { }
        });
        string[] attempts = [socketPath, "/escape" + socketPath, "/up" + socketPath, "/proc/self/root" + socketPath, "/outside/sock"];

        var r = GuestRunner.Run(_outside.Path, ["--root", _root.Path], "/bin/" + Path.GetFileName(client), ["connect", .. attempts]);

        listener.Close();
        Assert.DoesNotContain(Secret, r.Stdout + r.Stderr);
        Expect.Success(string.Concat(attempts.Select(a => $"{a}: No such file or directory\n")), r);
    }

    /// <summary>Compiles tests/fixtures/NAME.c statically into <paramref name="dir"/> (a --root tree has no libraries).</summary>
    private static string CompileStatic(string name, string dir)
    {
        string output = Path.Combine(dir, name);
        var psi = new System.Diagnostics.ProcessStartInfo(Tools.Gcc) { RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { "-static", "-O2", "-o", output, Path.Combine(RepoRoot.Find(), "tests", "fixtures", name + ".c") }) psi.ArgumentList.Add(a);
        using var gcc = System.Diagnostics.Process.Start(psi)!;
        string errors = gcc.StandardError.ReadToEnd();
        gcc.WaitForExit();
        Assert.True(gcc.ExitCode == 0, $"gcc -static {name}.c failed (a static libc is in libc6-dev):\n{errors}");
        return output;
    }
}

/// <summary>The host kernel's own state is not the guest's, even for a guest running as root.</summary>
public sealed class HostKernelTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void The_host_kernel_log_can_be_neither_read_nor_cleared()
    {
        // syslog(2): 3 reads the log, 5 clears it, 10 asks its size.
        const string probe = "import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\nbuf = ctypes.create_string_buffer(4096)\n" +
            "for action in (3, 5, 10):\n    r = libc.syscall(103, action, buf, 4096)\n    print(action, r, os.strerror(ctypes.get_errno()) if r < 0 else '')\n";
        Expect.Success("3 -1 Operation not permitted\n5 -1 Operation not permitted\n10 -1 Operation not permitted\n",
            GuestRunner.Run(_dir.Path, Tools.Python3, "-c", probe));
    }
}
