namespace UmlMicro.Supervisor.Cli;

/// <summary>A usage error: printed as one line, exit status 2.</summary>
public sealed class UsageError(string message) : Exception(message);

/// <summary>`umlmicro run` as typed: the options before PROGRAM as configuration settings, then PROGRAM and its arguments untouched.</summary>
/// <param name="Settings">`--Section:Key=value`, over the configuration file and the environment.</param>
/// <param name="Program">Empty when none was given: an image's command then.</param>
public sealed record RunOptions(string? ConfigFile, IReadOnlyList<string> Settings, string Program, IReadOnlyList<string> Argv);
