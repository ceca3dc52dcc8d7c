namespace UmlMicro.Tests;

/// <summary>The repository the tests run from, and the kernel build the test run produced.</summary>
public static class RepoRoot
{
    public static string Find()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "UmlMicro.sln"))) return d.FullName;
        throw new InvalidOperationException("UmlMicro.sln not found above " + AppContext.BaseDirectory);
    }

    /// <summary>build/Release or build/Debug: the configuration this test assembly was built in.</summary>
    public static string BinDir()
    {
        var config = AppContext.BaseDirectory.Contains("/Release/") ? "Release" : "Debug";
        return Path.Combine(Find(), "build", config);
    }
}
