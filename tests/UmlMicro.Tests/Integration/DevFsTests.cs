namespace UmlMicro.Tests.Integration;

/// <summary>devfs: the devices programs use behave as the host's, and nothing else of the host's /dev is there.</summary>
public sealed class DevFsTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void Null_zero_full_urandom_and_the_std_links_work_as_natively()
    {
        string script = "echo lost > /dev/null; cat /dev/null | wc -c; head -c 5 /dev/zero | od -An -tx1; " +
                        "echo x > /dev/full; echo \"full: $?\"; head -c 16 /dev/full | wc -c; " +
                        $"{Tools.Busybox} sh -c 'echo x > /dev/full' 2>&1; " +
                        "head -c 32 /dev/urandom | wc -c; head -c 8 /dev/random | wc -c; " +
                        "echo hi | cat /dev/stdin; echo out > /dev/stdout; echo err > /dev/stderr 2>&1; " +
                        "echo fd | cat /dev/fd/0; readlink /dev/stdin /dev/stdout /dev/stderr /dev/fd";
        var native = GuestRunner.Native(_dir.Path, "/bin/sh", "-c", script);
        var guest = GuestRunner.Run(_dir.Path, "/bin/sh", "-c", script);

        Expect.SameAsNative(native, guest);
        Assert.Contains("full: 1", guest.StdoutLines); // the write failed
        Assert.Contains("sh: write error: No space left on device", guest.StdoutLines);
        Assert.Equal(native.Stderr, guest.Stderr);
    }

    [Fact]
    public void Ls_dev_shows_only_the_devfs_entries_and_dev_shm_is_private()
    {
        string name = $"umlmicro-shm-probe-{Guid.NewGuid():N}";
        var r = GuestRunner.Run(_dir.Path, "/bin/sh", "-c",
            "ls -A /dev | tr '\\n' ' '; echo; ls /dev/sda /dev/kmsg /dev/mem 2>&1 | sed 's/.*: //'; " +
            $"echo shm > /dev/shm/{name} && cat /dev/shm/{name}; echo x > /dev/newdev");

        Expect.ExitCode(2, r);
        var entries = r.StdoutLines[0].Split(' ', StringSplitOptions.RemoveEmptyEntries).ToHashSet();
        string[] required = ["null", "zero", "full", "random", "urandom", "stdin", "stdout", "stderr", "fd", "shm"];
        string[] allowed = [.. required, "tty", "ptmx", "pts"];
        Assert.Superset(required.ToHashSet(), entries);
        Assert.Subset(allowed.ToHashSet(), entries);
        Assert.Equal(["No such file or directory", "No such file or directory", "No such file or directory", "shm"], r.StdoutLines[1..5]);
        Assert.False(File.Exists($"/dev/shm/{name}"), "the guest's /dev/shm is the host's");
    }
}
