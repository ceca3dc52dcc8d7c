using System.CommandLine;
using System.CommandLine.Help;
using System.CommandLine.Invocation;

namespace UmlMicro.Supervisor.Cli;

/// <summary>
/// umlmicro's command line, parsed by System.CommandLine: `run`, help, and the [suggest] directive that shells'
/// completion asks. A usage error is thrown as <see cref="UsageError"/> (one line, exit 2), never printed with help.
/// </summary>
internal sealed class CommandLine
{
    private readonly RootCommand _root = new(
        "umlmicro — a user-mode Linux kernel built as a microkernel. A ptrace supervisor catches every syscall of the " +
        "guest and routes it over JSON-RPC to the VFS, MM and scheduler server processes named in the configuration file.");

    private readonly RunCommand _run = new();

    /// <param name="runGuest">What `umlmicro run` does with its options; returns the exit status.</param>
    public CommandLine(Func<RunOptions, int> runGuest)
    {
        // Only -h and --help (not -? /? /h), and no --version: the options umlmicro has always had.
        _root.Options.Clear();
        _root.Options.Add(new HelpOption("--help", "-h") { Action = new Help() });
        _root.Add(_run);
        // Without a command it shows what there is, but a command was missing: exit 2.
        _root.SetAction(r =>
        {
            new Help().Invoke(r);
            return 2;
        });
        _run.SetAction(r => runGuest(_run.Read(r)));
    }

    /// <summary>Parses <paramref name="args"/> and does what they ask; returns the exit status.</summary>
    public int Invoke(string[] args, TextWriter? output = null)
    {
        if (args is [var command, .. var rest] && command == _run.Name) args = [command, .. _run.MarkGuest(rest)];
        // No @file expansion: an argument is what it says.
        var result = _root.Parse(args, new ParserConfiguration { ResponseFileTokenReplacer = null });
        if (result.Action is ParseErrorAction)
        {
            string see = result.CommandResult.Command == _run ? "umlmicro run --help" : "umlmicro --help";
            throw new UsageError($"{result.Errors[0].Message.TrimEnd('.')} (see {see})");
        }
        // Exceptions reach Program's handlers (one line, exit 2 for a usage error); SIGINT and SIGTERM are the guest's
        // (the supervisor forwards them), not a cancellation of the action.
        var invocation = new InvocationConfiguration { EnableDefaultExceptionHandler = false, ProcessTerminationTimeout = null };
        if (output is not null) invocation.Output = output;
        return result.Invoke(invocation);
    }

    /// <summary>The help of the command asked about; the root's is followed by its commands', whose options are what one looks for.</summary>
    private sealed class Help : SynchronousCommandLineAction
    {
        public override bool ClearsParseErrors => true;

        public override int Invoke(ParseResult result)
        {
            new HelpAction().Invoke(result);
            if (result.CommandResult.Command is RootCommand root)
            {
                foreach (var command in root.Subcommands)
                    root.Parse([command.Name, "--help"], result.Configuration).Invoke(result.InvocationConfiguration);
            }
            return 0;
        }
    }
}
