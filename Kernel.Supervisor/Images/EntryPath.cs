namespace UmlMicro.Supervisor.Images;

internal static class EntryPath
{
    /// <summary>
    /// An archive entry's name as a path relative to the root, with <c>.</c> and empty components dropped; refused
    /// when it is absolute or has a <c>..</c> (either could name a place outside the root).
    /// </summary>
    public static string Relative(string name, string what)
    {
        if (name.Contains('\0')) throw new ImageRefused($"{what} has a NUL character in its name");
        if (name.StartsWith('/')) throw new ImageRefused($"{what} has an absolute path");
        var parts = name.Split('/', StringSplitOptions.RemoveEmptyEntries).Where(p => p != ".").ToArray();
        if (parts.Contains("..")) throw new ImageRefused($"{what} has a '..' component");
        return string.Join('/', parts);
    }
}
