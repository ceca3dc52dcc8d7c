using System.Diagnostics;

namespace UmlMicro.Tests;

/// <summary>
/// A Debian 13 (trixie) minbase root filesystem made by mmdebstrap from Debian's packages, for running another
/// distribution's userland than the host's (Debian 12): its glibc, loader, apt and bash are newer than the host's. Made
/// once per machine under /var/tmp (about 130 MB, 10–60 s with the network to Debian's mirror), into a temporary name
/// renamed into place, so an interrupted build is never used.
/// </summary>
public static class DebianTree
{
    private static readonly Lazy<string> Made = new(Make, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>The tree's directory; fails the test with how to get mmdebstrap when it is missing.</summary>
    public static string Trixie => Made.Value;

    /// <summary>The version of <paramref name="package"/> installed in the tree at <paramref name="root"/>, from its dpkg status.</summary>
    public static string PackageVersion(string root, string package)
    {
        string? current = null;
        foreach (var line in File.ReadLines(Path.Combine(root, "var/lib/dpkg/status")))
        {
            if (line.StartsWith("Package: ", StringComparison.Ordinal)) current = line[9..];
            else if (current == package && line.StartsWith("Version: ", StringComparison.Ordinal)) return line[9..];
        }
        throw new InvalidOperationException($"{package} is not installed in {root}");
    }

    private static string Make()
    {
        string dir = "/var/tmp/umlmicro-test-images/trixie-minbase";
        if (File.Exists(Path.Combine(dir, "etc/debian_version"))) return dir;
        string mmdebstrap = Tools.Require("mmdebstrap", "mmdebstrap");
        Directory.CreateDirectory(Path.GetDirectoryName(dir)!);
        string partial = dir + ".partial-" + Environment.ProcessId;
        var p = Process.Start(new ProcessStartInfo(mmdebstrap, ["--quiet", "--variant=minbase", "trixie", partial, "http://deb.debian.org/debian"])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        })!;
        string err = p.StandardError.ReadToEndAsync().Result + p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"mmdebstrap failed ({p.ExitCode}): {err}");
        try
        {
            Directory.Move(partial, dir);
        }
        catch (IOException) when (File.Exists(Path.Combine(dir, "etc/debian_version")))
        {
            Directory.Delete(partial, recursive: true); // another test run made it meanwhile
        }
        return dir;
    }
}
