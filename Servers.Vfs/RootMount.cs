namespace UmlMicro.Servers.Vfs;

/// <summary>
/// The one mount of this version: the guest's "/" is a host directory, passed through as it is (hostfs). With
/// the host's own "/" the mapping is the identity, and the host is given the guest's own strings.
/// </summary>
internal sealed class RootMount
{
    // What goes in front of a guest path: "" for the host's "/", so that "/etc" stays "/etc".
    private readonly string hostPrefix;

    /// <param name="hostRoot">An absolute, walked host directory.</param>
    public RootMount(string hostRoot) => hostPrefix = hostRoot == "/" ? "" : hostRoot;

    /// <summary>Whether the guest's "/" is the host's: every guest path then names its own host file.</summary>
    public bool IsIdentity => hostPrefix.Length == 0;

    /// <summary>The host path of a walked guest path; a trailing "/" keeps the guest's demand for a directory.</summary>
    public string ToHost(WalkedPath path) =>
        hostPrefix + path.GuestPath + (path.MustBeDirectory && path.GuestPath != "/" ? "/" : "");
}
