namespace UmlMicro.Tests;

/// <summary>
/// A marker in the environment of a test's runs, which the supervisor, its servers and its guests inherit, so that
/// what a run leaves behind can be found in /proc even after the supervisor is gone (other tests start their own
/// servers meanwhile). Disposing it kills whatever a failed test left, so it does not disturb the next one.
/// </summary>
public sealed class RunMarker : IDisposable
{
    private const string Variable = "UMLTEST_MARKER";
    private readonly string _value = Guid.NewGuid().ToString("N");

    /// <summary>The environment a marked run gets on top of the usual one.</summary>
    public Dictionary<string, string> Environment => new() { [Variable] = _value };

    public List<HostProcesses.Info> Leftovers() => HostProcesses.WithEnvironment(Variable, _value);

    /// <summary>What the supervisor killed on its way out may take a moment to be reaped; a live process after that is a leak.</summary>
    public void AssertNothingLeft(string when)
    {
        var gone = HostProcesses.Eventually(() => Leftovers().Count == 0, TimeSpan.FromSeconds(5));
        Assert.True(gone, $"{when}, these processes of the run are still alive: " +
                          string.Join(", ", Leftovers().Select(p => $"{p.Pid} {p.Comm} (parent {p.PPid}, state {p.State})")));
    }

    public void Dispose()
    {
        foreach (var p in Leftovers())
            try { HostProcesses.Signal(p.Pid, HostProcesses.SIGKILL); } catch (Xunit.Sdk.XunitException) { }
    }
}
