using UmlMicro.Supervisor.Cli;

namespace UmlMicro.Tests.Unit;

/// <summary>The second wall's plan: what the launcher is told to make read-only, writable, and reachable at all.</summary>
public sealed class HostWallTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private static string[] Args(string step) => step.Split(' ', 2) is [_, var rest] ? rest.Split('\t') : [];

    private static List<string> Op(HostWall wall, string op) =>
        [.. wall.Steps.Where(s => s == op || s.StartsWith(op + " ", StringComparison.Ordinal)).Select(s => string.Join('\t', Args(s)))];

    [Fact]
    public void Under_the_hosts_root_everything_is_sealed_but_the_writable_areas_and_the_devices()
    {
        string state = _dir.MakeDir("state"), memory = _dir.MakeDir("memory"), cwd = _dir.MakeDir("cwd");
        var wall = HostWall.Plan("/", [state, memory, cwd], ["/sys"], cwd, "guest", privateNetwork: false, denyFilter: "00");
        Assert.StartsWith("unshare ", wall.Steps[0]);
        // user, mount, pid, IPC and UTS; not the network unless asked
        Assert.Equal(0x3c020000u, Convert.ToUInt32(Args(wall.Steps[0])[0], 16));
        Assert.Equal(["guest"], Op(wall, "hostname"));
        int seal = wall.Steps.ToList().IndexOf("seal");
        Assert.True(seal > 0, "no seal step");
        // each writable area is a mount of its own before the seal, writable again after it, and Landlock allows it
        foreach (var dir in new[] { state, memory, cwd })
        {
            Assert.Contains($"bind {dir}\t{dir}", wall.Steps.Take(seal));
            Assert.Contains($"writable {dir}", wall.Steps.Skip(seal));
            Assert.Contains($"allow-write {dir}", wall.Steps);
        }
        Assert.DoesNotContain("writable /sys", wall.Steps);
        Assert.Contains("device /dev/null", wall.Steps);
        Assert.DoesNotContain(wall.Steps, s => s.StartsWith("newroot", StringComparison.Ordinal));
        Assert.DoesNotContain("loopback", wall.Steps);
        // the cwd is taken again once the mounts are in place
        Assert.Equal([cwd], Op(wall, "chdir"));
        // what cannot be undone comes last, in this order
        var order = new[] { "capabilities", "landlock", "enforce", "deny", "sysvipc" }
            .Select(op => wall.Steps.ToList().FindIndex(s => s == op || s.StartsWith(op + " ", StringComparison.Ordinal))).ToList();
        Assert.True(order.All(i => i > seal) && order.SequenceEqual(order.Order()), string.Join('\n', wall.Steps));
        Assert.Equal(["a80425fb"], Op(wall, "capabilities"));
    }

    [Fact]
    public void Under_another_root_only_the_guests_trees_and_its_own_top_level_names_exist()
    {
        string root = _dir.MakeDir("root"), state = _dir.MakeDir("state");
        Directory.CreateDirectory(Path.Combine(root, "usr", "lib"));
        Directory.CreateDirectory(Path.Combine(root, "proc"));
        File.CreateSymbolicLink(Path.Combine(root, "lib64"), "usr/lib");
        var wall = HostWall.Plan(root, [state], [], "/", "", privateNetwork: true, denyFilter: "00");
        Assert.Equal(0x7c020000u, Convert.ToUInt32(Args(wall.Steps[0])[0], 16));
        Assert.Equal([state], Op(wall, "newroot"));
        var binds = Op(wall, "bind");
        Assert.Contains($"/.oldroot{root}\t{root}", binds);
        Assert.Contains($"/.oldroot{state}\t{state}", binds);
        Assert.Contains("/.oldroot/proc\t/proc", binds);
        Assert.Contains($"/.oldroot{root}/usr\t/usr", binds);
        Assert.DoesNotContain(binds, b => b.EndsWith("\t/", StringComparison.Ordinal));
        // the guest's own /proc is the VFS's: the host's is the one bound there
        Assert.DoesNotContain($"/.oldroot{root}/proc\t/proc", binds);
        Assert.Equal(["usr/lib\t/lib64"], Op(wall, "symlink"));
        Assert.Contains("dropold", wall.Steps);
        Assert.Contains("loopback", wall.Steps);
        // the cwd "/" is not the guest's: it starts in its root
        Assert.Equal([root], Op(wall, "chdir"));
    }

    [Fact]
    public void A_path_the_plan_cannot_carry_is_a_usage_error()
    {
        string odd = _dir.MakeDir("a\tb");
        Assert.Throws<UsageError>(() => HostWall.Plan("/", [odd], [], "/", "", false, "00"));
    }
}
