namespace UmlMicro.Tests;

/// <summary>Assertions on runs, with the whole run in the message when they fail.</summary>
public static class Expect
{
    /// <summary>The guest printed the same stdout and ended with the same status as the native run.</summary>
    public static void SameAsNative(RunResult native, RunResult guest)
    {
        Assert.True(native.Stdout == guest.Stdout && native.ExitCode == guest.ExitCode,
            $"under umlmicro the output or exit status differs from the native run\n" +
            $"{FirstDifference(native.StdoutLines, guest.StdoutLines)}\n" +
            $"=== native ===\n{native}\n=== umlmicro ===\n{guest}");
    }

    public static void ExitCode(int expected, RunResult r) =>
        Assert.True(r.ExitCode == expected, $"expected exit status {expected}\n{r}");

    public static void Stdout(string expected, RunResult r) =>
        Assert.True(r.Stdout == expected, $"expected stdout {Show(expected)}\n{r}");

    /// <summary>Exit status 0 and the given stdout.</summary>
    public static void Success(string expectedStdout, RunResult r)
    {
        ExitCode(0, r);
        Stdout(expectedStdout, r);
    }

    /// <summary>A usage or configuration error: exit status 2 and exactly one line on stderr, without a stack trace.</summary>
    public static string UsageError(RunResult r)
    {
        Assert.True(r.ExitCode == 2, $"expected exit status 2 (usage or configuration error)\n{r}");
        var lines = r.StderrLines;
        Assert.True(lines.Length == 1 && r.Stderr.EndsWith('\n'), $"expected exactly one line on stderr\n{r}");
        Assert.False(r.Stderr.Contains("Exception", StringComparison.Ordinal) || r.Stderr.Contains("   at ", StringComparison.Ordinal),
            $"a stack trace on stderr\n{r}");
        Assert.True(r.Stdout.Length == 0, $"nothing expected on stdout\n{r}");
        return lines[0];
    }

    private static string FirstDifference(string[] a, string[] b)
    {
        for (var i = 0; i < Math.Max(a.Length, b.Length); i++)
        {
            var x = i < a.Length ? a[i] : "<no line>";
            var y = i < b.Length ? b[i] : "<no line>";
            if (x != y) return $"first difference at line {i + 1}: native {Show(x)}, umlmicro {Show(y)}";
        }
        return "stdout is the same";
    }

    private static string Show(string s) => "\"" + s.Replace("\n", "\\n") + "\"";
}
