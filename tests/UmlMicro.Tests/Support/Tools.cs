namespace UmlMicro.Tests;

/// <summary>The host programs the integration tests run as guests. .ci/run installs them on Debian.</summary>
public static class Tools
{
    /// <summary>The first executable NAME in the tests' PATH, or null.</summary>
    public static string? Find(string name)
    {
        if (name.Contains('/')) return File.Exists(name) ? name : null;
        foreach (var dir in GuestRunner.BaseEnvironment()["PATH"].Split(':'))
        {
            var path = Path.Combine(dir, name);
            if (File.Exists(path)) return path;
        }
        return null;
    }

    /// <summary>The path of a required tool; fails the test with how to get it when it is missing.</summary>
    public static string Require(string name, string package)
    {
        var path = Find(name);
        Assert.True(path is not null, $"{name} is not installed: the integration tests need it (apt-get install {package}; .ci/run installs it)");
        return path!;
    }

    public static string Busybox => Require("busybox", "busybox-static");
    public static string Python3 => Require("/usr/bin/python3", "python3");
    public static string Gcc => Require("gcc", "gcc libc6-dev");
    public static string Make => Require("make", "make");
}
