using System.Diagnostics;

namespace UmlMicro.Tests;

/// <summary>
/// The C fixture programs of tests/fixtures, compiled with <c>gcc -O2 -pthread</c> into a temporary folder once
/// per test run (the first test class that needs them pays; the others share the result). Use it as an
/// <see cref="IClassFixture{TFixture}"/>.
/// </summary>
public sealed class FixturePrograms
{
    private static readonly Lazy<(string? Dir, string? Error)> Compiled = new(Compile, LazyThreadSafetyMode.ExecutionAndPublication);

    public string Dir
    {
        get
        {
            var (dir, error) = Compiled.Value;
            Assert.True(dir is not null, error);
            return dir!;
        }
    }

    /// <summary>The absolute path of the compiled fixture <paramref name="name"/> (tests/fixtures/NAME.c).</summary>
    public string this[string name]
    {
        get
        {
            var path = Path.Combine(Dir, name);
            Assert.True(File.Exists(path), $"no fixture {name} (tests/fixtures/{name}.c)");
            return path;
        }
    }

    private static (string?, string?) Compile()
    {
        var src = Path.Combine(RepoRoot.Find(), "tests", "fixtures");
        var gcc = Tools.Find("gcc");
        if (gcc is null) return (null, "gcc is needed to build the fixtures (apt-get install gcc libc6-dev; .ci/run does it)");
        var dir = Directory.CreateTempSubdirectory("umlmicro-fixtures-").FullName;
        AppDomain.CurrentDomain.ProcessExit += (_, _) => { try { Directory.Delete(dir, true); } catch (IOException) { } };

        var errors = new System.Collections.Concurrent.ConcurrentBag<string>();
        Parallel.ForEach(Directory.GetFiles(src, "*.c"), file =>
        {
            var name = Path.GetFileNameWithoutExtension(file);
            var psi = new ProcessStartInfo(gcc)
            {
                UseShellExecute = false,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            };
            foreach (var a in new[] { "-O2", "-pthread", "-Wall", "-o", Path.Combine(dir, name), file }) psi.ArgumentList.Add(a);
            using var p = Process.Start(psi)!;
            var stderr = p.StandardError.ReadToEndAsync();
            var stdout = p.StandardOutput.ReadToEnd();
            p.WaitForExit();
            if (p.ExitCode != 0) errors.Add($"gcc {file} failed ({p.ExitCode}):\n{stdout}{stderr.Result}");
        });
        return errors.IsEmpty ? (dir, null) : (null, string.Join("\n", errors));
    }
}
