namespace UmlMicro.Tests.Integration;

/// <summary>A real toolchain as guest: gcc (cc1, as, collect2, ld) and make, each forking and exec'ing.</summary>
public sealed class ToolchainTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private const string Hello = """
        #include <stdio.h>
        #include <unistd.h>
        int main(int argc, char **argv)
        {
            printf("hello, world\n");
            for (int i = 1; i < argc; i++) printf("arg %d: %s\n", i, argv[i]);
            return 3;
        }
        """;

    [Fact]
    public void Gcc_compiles_and_links_a_hello_world_that_runs_as_natively()
    {
        Tools.Require("gcc", "gcc libc6-dev");
        var native = _dir.MakeDir("native");
        var guest = _dir.MakeDir("guest");
        File.WriteAllText(Path.Combine(native, "hello.c"), Hello);
        File.WriteAllText(Path.Combine(guest, "hello.c"), Hello);

        const string build = "gcc -O2 -Wall -o hello hello.c && ./hello one 'two words'";
        var n = GuestRunner.Native(native, "sh", "-c", build);
        Expect.ExitCode(3, n);
        var g = GuestRunner.Run(guest, "sh", "-c", build);
        Expect.SameAsNative(n, g);
        Assert.True(g.Stderr.Length == 0, $"gcc complained under umlmicro\n{g}");

        // The binary gcc built under umlmicro is a real one: it runs natively too, and the same as gcc's native one.
        var nativeHello = Path.Combine(native, "hello");
        var guestHello = Path.Combine(guest, "hello");
        Expect.SameAsNative(GuestRunner.Native(native, nativeHello, "x"), GuestRunner.Native(native, guestHello, "x"));
        Expect.SameAsNative(GuestRunner.Native(native, nativeHello, "x"), GuestRunner.Run(native, guestHello, "x"));
    }

    [Fact]
    public void Gcc_reports_a_compile_error_as_natively()
    {
        Tools.Require("gcc", "gcc libc6-dev");
        _dir.Write("broken.c", "int main(void) { return undeclared; }\n");
        var n = GuestRunner.Native(_dir.Path, "gcc", "-c", "broken.c", "-o", "broken.o");
        Expect.ExitCode(1, n);
        var g = GuestRunner.Run(_dir.Path, "gcc", "-c", "broken.c", "-o", "broken.o");
        Expect.SameAsNative(n, g);
        Assert.Equal(n.Stderr, g.Stderr);
    }

    private const string Makefile = "all: report.txt\n\tcat report.txt\n\n" +
                                    "report.txt: input.txt\n\tsort -r input.txt > report.txt\n\techo built >> report.txt\n";

    [Fact]
    public void Make_runs_a_two_rule_makefile_as_natively_and_then_finds_it_up_to_date()
    {
        Tools.Require("make", "make");
        var runs = new Dictionary<string, (RunResult First, RunResult Second)>();
        foreach (var side in new[] { "native", "guest" })
        {
            var dir = _dir.MakeDir(side);
            File.WriteAllText(Path.Combine(dir, "Makefile"), Makefile);
            File.WriteAllText(Path.Combine(dir, "input.txt"), "apple\ncherry\nbanana\n");
            var run = side == "native" ? (Func<string, RunResult>)(d => GuestRunner.Native(d, "make", "--no-print-directory"))
                                       : d => GuestRunner.Run(d, "make", "--no-print-directory");
            var first = run(dir);
            var second = run(dir);
            runs[side] = (first, second);
        }
        Expect.ExitCode(0, runs["native"].First);
        Assert.Contains("cherry\nbanana\napple\nbuilt\n", runs["native"].First.Stdout);
        Expect.SameAsNative(runs["native"].First, runs["guest"].First);
        Expect.SameAsNative(runs["native"].Second, runs["guest"].Second);
        Assert.Equal(File.ReadAllText(_dir.File("native/report.txt")), File.ReadAllText(_dir.File("guest/report.txt")));
    }

    [Fact]
    public void Make_builds_a_c_program_with_gcc()
    {
        Tools.Require("make", "make");
        Tools.Require("gcc", "gcc libc6-dev");
        _dir.Write("hello.c", Hello);
        _dir.Write("Makefile", "hello: hello.o\n\tgcc -o $@ $^\n\nhello.o: hello.c\n\tgcc -c -O2 -o $@ $<\n");
        var r = GuestRunner.Run(_dir.Path, "sh", "-c", "make -s && ./hello; echo status=$?");
        Expect.Success("hello, world\nstatus=3\n", r);
    }
}
