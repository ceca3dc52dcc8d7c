using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;

namespace UmlMicro.Tests.Integration;

/// <summary>
/// --root with another distribution's tree (Debian 13 on a Debian 12 host): what the host kernel loads by itself — a
/// program's PT_INTERP, a #! interpreter — comes from the guest's tree, so its programs run with their own glibc, and
/// apt installs a package into the copy-on-write layer, leaving the tree and the host as they were.
/// </summary>
public sealed class ForeignRootTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly string _root = DebianTree.Trixie;

    public void Dispose() => _dir.Dispose();

    private RunResult Guest(string script, params string[] options) =>
        GuestRunner.Run(_dir.Path, ["--root", _root, .. options], "/bin/sh", "-c", script);

    [Fact]
    public void Programs_run_with_the_guests_own_glibc_and_apt()
    {
        string glibc = DebianTree.PackageVersion(_root, "libc6");
        Assert.NotEqual(DebianTree.PackageVersion("/", "libc6"), glibc); // else this proves nothing
        var r = Guest("ldd --version | head -1; apt-get --version | head -1; cat /etc/debian_version");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains($"GLIBC {glibc}", r.StdoutLines[0]);
        Assert.Equal($"apt {DebianTree.PackageVersion(_root, "apt")} (amd64)", r.StdoutLines[1]);
        Assert.Equal(File.ReadAllText(Path.Combine(_root, "etc/debian_version")).Trim(), r.StdoutLines[2]);
    }

    [Fact]
    public void A_hashbang_interpreter_is_the_guests()
    {
        _dir.Write("bin/script", "#!/bin/bash\necho \"$BASH_VERSION\"\n");
        File.SetUnixFileMode(_dir.File("bin/script"), (UnixFileMode)0b111_101_101);
        var r = GuestRunner.Run(_dir.Path, ["--root", _root, "--bind", _dir.File("bin") + ":/opt/bin:ro"], "/opt/bin/script");
        Assert.True(r.ExitCode == 0, r.ToString());
        // bash's own version (5.2.37(1)-release) is the Debian version's upstream part (5.2.37-2).
        Assert.StartsWith(DebianTree.PackageVersion(_root, "bash").Split('-')[0], r.Stdout.Trim());
    }

    [Fact]
    public void Apt_installs_a_local_package_into_the_copy_on_write_layer_only()
    {
        string deb = MakePackage();
        string treeBefore = TreeHash(_root), hostStatus = FileHash("/var/lib/dpkg/status");
        var r = Guest("apt-get install -y -q /debs/umlmicro-probe_1.0_all.deb >/dev/null 2>&1; umlmicro-probe; dpkg-query -W -f='${Status}\\n' umlmicro-probe",
            "--bind", Path.GetDirectoryName(deb)! + ":/debs:ro");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal(["probe installed", "install ok installed"], r.StdoutLines);
        Assert.Equal(treeBefore, TreeHash(_root));
        Assert.Equal(hostStatus, FileHash("/var/lib/dpkg/status"));
        Assert.False(File.Exists("/usr/bin/umlmicro-probe"));
        Assert.False(File.Exists(Path.Combine(_root, "usr/bin/umlmicro-probe")));
    }

    [Fact]
    public void The_guest_starts_as_the_user_in_the_directory_and_with_the_environment_asked_for()
    {
        var r = Guest("id -un; id -gn; pwd; echo \"$GREETING\"; touch /etc/x 2>&1 | grep -c 'Permission denied'",
            "--user", "nobody", "--workdir", "/var/lib", "--env", "GREETING=hello there");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal(["nobody", "nogroup", "/var/lib", "hello there", "1"], r.StdoutLines);
    }

    /// <summary>A package with one script, made with dpkg-deb as any Debian package is.</summary>
    private string MakePackage()
    {
        string src = _dir.MakeDir("pkg");
        _dir.Write("pkg/DEBIAN/control", "Package: umlmicro-probe\nVersion: 1.0\nArchitecture: all\nMaintainer: UmlMicro tests <t@example.org>\nDescription: probe\n");
        _dir.Write("pkg/usr/bin/umlmicro-probe", "#!/bin/sh\necho probe installed\n");
        File.SetUnixFileMode(_dir.File("pkg/usr/bin/umlmicro-probe"), (UnixFileMode)0b111_101_101);
        string deb = Path.Combine(_dir.MakeDir("debs"), "umlmicro-probe_1.0_all.deb");
        var p = Process.Start(new ProcessStartInfo(Tools.Require("dpkg-deb", "dpkg"), ["--root-owner-group", "--build", src, deb]) { RedirectStandardOutput = true })!;
        p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        Assert.Equal(0, p.ExitCode);
        return deb;
    }

    /// <summary>Every name in the tree with its mode, owner, size, modification time and link target, as find sees them
    /// (never following a link: an absolute one names a host path).</summary>
    private static string TreeHash(string root)
    {
        var p = Process.Start(new ProcessStartInfo("find", [root, "-printf", "%p %m %U:%G %s %T@ %l\\n"]) { RedirectStandardOutput = true })!;
        var lines = p.StandardOutput.ReadToEnd().Split('\n').Order(StringComparer.Ordinal);
        p.WaitForExit();
        Assert.Equal(0, p.ExitCode);
        return Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(string.Join('\n', lines))));
    }

    private static string FileHash(string path) => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(path)));
}
