using System.Diagnostics;

namespace UmlMicro.Tests.Integration;

/// <summary>
/// Linux paths are bytes (issue 17): a guest creates, lists, stats, opens, renames, links, symlinks, reads links of and
/// removes names holding bytes that are not UTF-8 (tests/fixtures/bytepaths.c), in the copy-on-write layer (over
/// names of the read-only layer too) and in a bind mount, in every trap mode, and prints what a native run prints;
/// the host's own names are then the guest's bytes exactly.
/// </summary>
public sealed class BytePathTests(FixturePrograms fixtures) : IClassFixture<FixturePrograms>, IDisposable
{
    private readonly List<string> _dirs = [];

    /// <summary>A fresh host directory, removed with rm -rf: .NET's delete cannot name what is not UTF-8.</summary>
    private string NewDir()
    {
        string dir = Directory.CreateTempSubdirectory("umlmicro-bytes-").FullName;
        _dirs.Add(dir);
        return dir;
    }

    public void Dispose()
    {
        foreach (var dir in _dirs)
        {
            using var rm = Process.Start("rm", ["-rf", dir]);
            rm.WaitForExit();
        }
    }

    /// <summary>The names in host directory <paramref name="dir"/>, hex-escaped, as the fixture lists them natively.</summary>
    private string[] HostNames(string dir)
    {
        var r = GuestRunner.Native(dir, fixtures["bytepaths"], "ls", dir);
        Expect.ExitCode(0, r);
        string line = Assert.Single(r.StdoutLines);
        return line[(line.IndexOf(':') + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
    }

    private RunResult Setup(string dir)
    {
        var r = GuestRunner.Native(dir, fixtures["bytepaths"], "setup", dir);
        Expect.ExitCode(0, r);
        return r;
    }

    private (RunResult Run, string[] Names) NativeRun()
    {
        string dir = NewDir();
        Setup(dir);
        var native = GuestRunner.Native(dir, fixtures["bytepaths"], "run", dir);
        Expect.ExitCode(0, native);
        Assert.Contains(@"create kept kept\xe9 -> 0", native.Stdout);
        return (native, HostNames(dir));
    }

    [Theory]
    [InlineData("seccomp")]
    [InlineData("tt")]
    [InlineData("sysemu")]
    public void Names_of_any_bytes_in_the_copy_on_write_layer_are_as_natively(string mode)
    {
        var (native, nativeNames) = NativeRun();
        string lower = NewDir(), kept = NewDir();
        Setup(lower);
        var before = HostNames(lower);

        var guest = GuestRunner.Run(lower, ["--mode", mode, "--isolate", "--keep-changes", kept], fixtures["bytepaths"], "run", lower);

        Expect.SameAsNative(native, guest);
        // The state directory went with the guest, names of any bytes and all.
        Assert.DoesNotContain("could not remove", guest.Stderr, StringComparison.Ordinal);
        // The read-only layer is as it was; the copy-on-write layer holds the guest's names, byte for byte.
        Assert.Equal(before, HostNames(lower));
        var upper = HostNames(kept + lower);
        Assert.Subset(nativeNames.ToHashSet(), upper.ToHashSet());
        Assert.All(nativeNames.Where(n => n.StartsWith("kept", StringComparison.Ordinal) || n.EndsWith(".moved", StringComparison.Ordinal)),
            n => Assert.Contains(n, upper));
        Assert.Contains(@"kept\xe9", upper);
        Assert.Contains(@"kept\xed\xa0\x80.d", upper);
        Assert.Contains(@"keptx\xef\x9f\xa9", upper);
    }

    [Theory]
    [InlineData("seccomp")]
    [InlineData("tt")]
    [InlineData("sysemu")]
    public void Names_of_any_bytes_in_a_bind_mount_are_as_natively(string mode)
    {
        var (native, nativeNames) = NativeRun();
        string bound = NewDir(), cwd = NewDir();
        Setup(bound);

        var guest = GuestRunner.Run(cwd, ["--mode", mode, "--isolate", "--bind", $"{bound}:/mnt/bytes"], fixtures["bytepaths"], "run", "/mnt/bytes");

        Expect.SameAsNative(native, guest);
        Assert.DoesNotContain("could not remove", guest.Stderr, StringComparison.Ordinal);
        Assert.Equal(nativeNames, HostNames(bound));
    }

    [Fact]
    public void A_name_of_any_bytes_in_the_current_directory_bind_is_as_natively()
    {
        // The default run: the current directory is bound writable at its own path, and the guest's strings
        // reach the host untouched when no rewrite is needed.
        var (native, nativeNames) = NativeRun();
        string dir = NewDir();
        Setup(dir);

        var guest = GuestRunner.Run(dir, [], fixtures["bytepaths"], "run", dir);

        Expect.SameAsNative(native, guest);
        Assert.Equal(nativeNames, HostNames(dir));
    }

    [Fact]
    public void A_program_arguments_and_variables_of_any_bytes_reach_guest_pid_1_as_they_were()
    {
        // A shell hands umlmicro the bytes: a .NET test can only pass arguments as UTF-8. The program is named by a
        // symlink of such a name (looked up before the guest starts), and prints its argv, a variable and its comm.
        const string script = """
            ln -s "$0" "$(printf 'r\351')" || exit 1
            export BYTEPATHS_ENV="$(printf 'e\351\377')"
            exec "$@" "./$(printf 'r\351')" comm "$(printf 'a\355\240\200\377')" "$(printf 'x\357\237\251')"
            """;
        string nativeDir = NewDir(), guestDir = NewDir();
        var native = GuestRunner.Native(nativeDir, "/bin/sh", "-c", script, fixtures["bytepaths"]);
        var guest = GuestRunner.Native(guestDir, "/bin/sh", "-c", script, fixtures["bytepaths"], GuestRunner.Supervisor, "run", "--");

        Expect.ExitCode(0, native);
        Assert.Contains(@"argv: ./r\xe9 comm a\xed\xa0\x80\xff x\xef\x9f\xa9", native.Stdout);
        Assert.Contains(@"env: e\xe9\xff", native.Stdout);
        Expect.SameAsNative(native, guest);
    }
    [Fact]
    public void A_guest_starts_in_a_current_directory_and_binds_a_directory_whose_names_are_not_utf8()
    {
        // The supervisor's own paths are bytes too: the current directory, bound at its own path (the guest starts in
        // it), a --bind source, a --keep-changes directory (and the VFS's whiteouts in it) and a --trace file. A shell
        // hands umlmicro the bytes.
        const string script = """
            d="$(printf 'w\351')"; mkdir "$d" && cd "$d" || exit 1
            "$1" run -- /bin/sh -c 'pwd | od -An -tx1 | tr -d " \n"; echo; echo x > f; cat f' || exit 1
            cd .. && "$1" run --isolate --bind "$PWD/$d:/mnt/b" --workdir /mnt/b -- /bin/sh -c 'cat f; pwd; echo y > g' || exit 1
            cat "$d/g"
            "$1" run --isolate --keep-changes "$PWD/$d/kept" --trace "$PWD/$d/trace" -- /bin/sh -c 'rm /etc/passwd; echo z > /tmp/z' || exit 1
            "$1" run --isolate --keep-changes "$PWD/$d/kept" -- /bin/sh -c 'cat /tmp/z; test -e /etc/passwd || echo gone'
            test -s "$d/trace" && ls "$d"
            """;
        string dir = NewDir();

        var r = GuestRunner.Native(dir, "/bin/sh", "-c", script, "sh", GuestRunner.Supervisor);

        Expect.ExitCode(0, r);
        string cwd = Convert.ToHexStringLower(System.Text.Encoding.UTF8.GetBytes(dir + "/w")) + "e90a";
        Assert.Equal([cwd, "x", "x", "/mnt/b", "y", "z", "gone", "f", "g", "kept", "trace"], r.StdoutLines);
        Assert.DoesNotContain("umlmicro:", r.Stderr, StringComparison.Ordinal);
    }
    [Fact]
    public void A_message_that_names_a_path_of_any_bytes_shows_its_bytes()
    {
        const string script = """
            "$1" run --bind "/nonexistent/$(printf 'n\351')" -- /bin/true 2>&1 | od -An -tx1 | tr -d ' \n'
            """;

        var r = GuestRunner.Native(NewDir(), "/bin/sh", "-c", script, "sh", GuestRunner.Supervisor);

        Assert.Contains(Convert.ToHexStringLower("'/nonexistent/n"u8) + "e927", r.Stdout); // the byte itself, then the quote
    }
    [Fact]
    public void A_config_file_and_an_image_in_a_directory_of_any_bytes_are_read()
    {
        const string script = """
            d="$(printf 'c\351')"; mkdir -p "$d/root/bin" && cp "$2" "$d/c.json" || exit 1
            cp "$(command -v busybox)" "$d/root/bin/" && ln -s busybox "$d/root/bin/sh" && tar -C "$d/root" -cf "$d/i.tar" . || exit 1
            "$1" run --config "$d/c.json" -- /bin/echo configured || exit 1
            "$1" run --image "$d/i.tar" -- /bin/sh -c 'echo imaged'
            """;
        string config = Path.Combine(Path.GetDirectoryName(GuestRunner.Supervisor)!, "configs", "default.json");

        var r = GuestRunner.Native(NewDir(), "/bin/sh", "-c", script, "sh", GuestRunner.Supervisor, config);

        Expect.ExitCode(0, r);
        Assert.Equal(["configured", "imaged"], r.StdoutLines);
    }
}
