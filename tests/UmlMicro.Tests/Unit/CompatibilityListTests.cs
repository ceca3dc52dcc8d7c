using UmlMicro.Contracts.Syscalls;

namespace UmlMicro.Tests.Unit;

public class CompatibilityListTests
{
    [Fact]
    public void The_committed_compatibility_list_is_generated_from_the_syscall_table()
    {
        var file = Path.Combine(RepoRoot.Find(), "docs", "SYSCALLS.md");
        var rendered = CompatibilityList.Render();
        if (Environment.GetEnvironmentVariable("UMLMICRO_UPDATE_DOCS") == "1") File.WriteAllText(file, rendered);
        Assert.True(File.Exists(file), "docs/SYSCALLS.md is missing: regenerate it (see its header)");
        Assert.Equal(rendered, File.ReadAllText(file));
    }
}
