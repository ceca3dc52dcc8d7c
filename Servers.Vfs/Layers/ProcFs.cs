using System.Globalization;
using System.Text;
using UmlMicro.Contracts.Linux;
using UmlMicro.Contracts.Servers;
using UmlMicro.Servers.Vfs.Native;
using static UmlMicro.Servers.Vfs.Layers.ProcPidText;

namespace UmlMicro.Servers.Vfs.Layers;

/// <summary>The path ran into /proc/PID and the request did not carry the guest's processes: ask again with them.</summary>
internal sealed class NeedProcessesException : Exception;

/// <summary>The path is a file whose text another server makes (<see cref="Render"/>), and the request did not carry
/// it: ask that server, then ask again with its text.</summary>
internal sealed class NeedRenderException(ProcRender render) : Exception
{
    public ProcRender Render { get; } = render;
}

/// <summary>Who is asking, and the guest's processes and a rendered text when the supervisor sent them.</summary>
internal sealed class ProcContext
{
    public int Vpid { get; set; }
    public int Vtid { get; set; }
    public IReadOnlyList<ProcPid>? Processes { get; set; }

    public IReadOnlyList<ProcPid> Need() => Processes ?? throw new NeedProcessesException();

    /// <summary>The text another server made for a file of this request, when the supervisor sent it.</summary>
    public ProcRendered? Rendered { get; set; }

    /// <summary>The text <paramref name="owner"/> made of <paramref name="file"/> of the task, once it is here; the owner
    /// is given the host's file <paramref name="hostSource"/>, and its text is written to <paramref name="material"/> as it
    /// is when that is set (see ProcRender).</summary>
    public ProcText NeedText(ProcOwner owner, int vpid, int vtid, int hostTid, string file, string? hostSource, string? material = null) =>
        Rendered is { } r && r.Vpid == vpid && r.Vtid == vtid && r.File == file ? r.Text
            : throw new NeedRenderException(new ProcRender(owner, hostTid, new ProcTextRequest(vpid, vtid, file, ""), hostSource, material));
}

/// <summary>
/// procfs as the guest must see it: only guest pids, and every pid in it virtual. Each server makes the text of what
/// it owns: stat and status come from Sched, maps and smaps_rollup from MM (with host paths this layer names as the
/// guest's); this layer makes those that name guest paths (mounts, mountinfo, the exe/cwd/root/fd links) and
/// translates the pids of sched, timers, fdinfo/N and children with the guest's pid list (ProcPidText); the rest
/// (cmdline, environ, comm, limits, ...) is the host's file of the same host task, passed through. Files outside /proc/PID are the host's, read-only, except
/// loadavg and locks, made the guest's here, and the kernel's identity files the VFS serves itself (see KernelFiles).
/// </summary>
internal sealed class ProcFs(ProcContext context, MountTable mounts, Func<string, string?> guestPathOf, Func<int, string?> cwdOf, string materialDir)
    : Mount("/proc", readOnly: false)
{
    private long _next;

    public override string FsType => "proc";

    /// <summary>A guest task as procfs shows it: a process (Thread null: its leader speaks for it) or one thread.</summary>
    private readonly record struct TaskView(ProcPid Process, ProcTid? Thread)
    {
        public int HostTid => Thread?.HostTid ?? Process.HostPid;
        public int Vtid => Thread?.Vtid ?? Process.Vpid;
        public string HostDir => Thread is null ? $"/proc/{Process.HostPid}" : $"/proc/{Process.HostPid}/task/{Thread.HostTid}";
    }

    public override Node Lookup(string rel)
    {
        if (rel.Length == 0) return Dir();
        var parts = rel.Split('/');
        switch (parts[0])
        {
            case "self": context.Need(); return parts.Length == 1 ? Link(Num(context.Vpid)) : Node.Missing(null, Layer.Synthetic);
            case "thread-self": context.Need(); return parts.Length == 1 ? Link($"{Num(context.Vpid)}/task/{Num(context.Vtid)}") : Node.Missing(null, Layer.Synthetic);
        }
        if (rel is "loadavg" or "locks") return new Node(NodeType.File, null, Layer.Synthetic);
        if (IsNumber(parts[0]))
            return FindTask(int.Parse(parts[0], CultureInfo.InvariantCulture)) is { } task ? TaskNode(task, parts.AsSpan(1)) : Node.Missing(null, Layer.Synthetic);
        return HostNode("/proc/" + rel, Layer.Host);
    }

    private Node TaskNode(TaskView task, ReadOnlySpan<string> rest)
    {
        if (rest.Length == 0) return Dir();
        string host = task.HostDir + "/" + string.Join('/', rest.ToArray());
        switch (rest[0])
        {
            case "status" or "stat" or "maps" or "smaps_rollup" or "mounts" or "mountinfo" or "sched" or "timers" or "children" when rest.Length == 1:
            case "fdinfo" when rest.Length == 2:
                // Made from the host's file of the same task, where the host has one (children only under task/TID,
                // timers only for a process, as on Linux).
                return HostFs.TypeOf(host) == NodeType.None ? Node.Missing(null, Layer.Synthetic) : new Node(NodeType.File, null, Layer.Synthetic);
            case "exe" when rest.Length == 1:
                return HostFs.ReadLink(host) is { } exe ? Link(GuestPathOrSelf(exe)) with { Jumps = true } : Node.Missing(null, Layer.Synthetic);
            case "cwd" when rest.Length == 1:
                return cwdOf(task.Process.Vpid) is { } cwd ? Link(cwd) with { Jumps = true } : Node.Missing(null, Layer.Synthetic);
            case "root" when rest.Length == 1:
                return Link("/") with { Jumps = true };
            case "fd" when rest.Length == 1:
                return Dir();
            case "fd" when rest.Length == 2:
                return FdLink(host);
            case "ns" when rest.Length == 2:
                // A namespace's magic link ("time:[4026531834]"): opening it opens the namespace, through the host's link.
                return HostFs.ReadLink(host) is { } ns ? new Node(NodeType.Symlink, host, Layer.Magic, ns) : Node.Missing(null, Layer.Synthetic);
            case "task" when rest.Length == 1:
                return Dir();
            case "task":
                if (!IsNumber(rest[1])) return Node.Missing(null, Layer.Synthetic);
                int tid = int.Parse(rest[1], CultureInfo.InvariantCulture);
                var thread = task.Process.Threads.FirstOrDefault(t => t.Vtid == tid);
                return thread is null ? Node.Missing(null, Layer.Synthetic) : TaskNode(new TaskView(task.Process, thread), rest[2..]);
            default:
                return HostNode(host, Layer.Host);
        }
    }

    /// <summary>
    /// /proc/PID/fd/N, a "magic link" as on Linux: opening it reopens the very file the fd holds (through the host's
    /// own link, so an inherited stdout stays the user's file, not a copy-up), while readlink and a walk through it
    /// see the guest path of that file; one with no path (a pipe, a socket) reads as the host says ("pipe:[N]").
    /// </summary>
    private Node FdLink(string host)
    {
        if (HostFs.ReadLink(host) is not { } target) return Node.Missing(null, Layer.Synthetic);
        string? guest = target.StartsWith('/') ? guestPathOf(StripDeleted(target)) : null;
        if (guest is not null && target.EndsWith(Deleted, StringComparison.Ordinal)) guest += Deleted;
        return new Node(NodeType.Symlink, host, Layer.Magic, guest);
    }

    public override IEnumerable<DirEntry> List(string rel)
    {
        var processes = context.Need();
        var parts = rel.Length == 0 ? [] : rel.Split('/');
        if (parts.Length == 0)
        {
            foreach (var e in HostList("/proc"))
                if (!IsNumber(e.Name) && e.Name is not ("self" or "thread-self")) yield return e;
            foreach (var p in processes) yield return new DirEntry(Num(p.Vpid), NodeType.Directory);
            yield return new DirEntry("self", NodeType.Symlink, Num(context.Vpid));
            yield return new DirEntry("thread-self", NodeType.Symlink, $"{Num(context.Vpid)}/task/{Num(context.Vtid)}");
            yield break;
        }
        if (FindTask(int.Parse(parts[0], CultureInfo.InvariantCulture)) is not { } task) yield break;
        int at = 1;
        if (parts.Length >= 3 && parts[1] == "task")
        {
            task = new TaskView(task.Process, task.Process.Threads.First(t => t.Vtid == int.Parse(parts[2], CultureInfo.InvariantCulture)));
            at = 3;
        }
        string sub = string.Join('/', parts[at..]);
        string prefix = string.Join('/', parts[..at]);
        switch (sub)
        {
            case "":
                foreach (var e in HostList(task.HostDir))
                {
                    var node = Lookup(prefix + "/" + e.Name);
                    yield return e with { LinkText = node.LinkText ?? e.LinkText };
                }
                break;
            case "fd":
                foreach (var e in HostList(task.HostDir + "/fd"))
                {
                    var node = FdLink(task.HostDir + "/fd/" + e.Name);
                    if (node.Exists) yield return new DirEntry(e.Name, NodeType.Symlink, node.LinkText ?? e.LinkText);
                }
                break;
            case "task":
                foreach (var t in task.Process.Threads) yield return new DirEntry(Num(t.Vtid), NodeType.Directory);
                break;
        }
    }

    public override string? AttributesOf(string rel, Node node) => "/proc";

    /// <summary>The host file the host is given for a generated file; written fresh for every walk that ends here,
    /// as Linux makes a proc file's text when it is read. One file per proc path, replaced by rename, so a reader
    /// that opened the older text keeps it and the folder does not grow with every read.</summary>
    public override string Materialize(string rel, Node node)
    {
        if (node.HostPath is { } host) return host;
        string path = Path.Combine(materialDir, rel.Replace('/', '_'));
        string fresh = path + "." + (++_next).ToString(CultureInfo.InvariantCulture);
        // The text holds guest paths (maps, mounts, cwd) and host bytes (cmdline, environ): written as the bytes they stand for.
        int errno = HostFs.WriteNew(fresh, PathBytes.Encode(Render(rel, path)), 0x124);
        if (errno == 0) errno = HostFs.Rename(fresh, path, 0);
        if (errno != 0) throw new IOException($"cannot write /proc/{rel}'s text to {fresh}: errno {errno}");
        return path;
    }

    /// <summary>Writing is for a process's own files (comm, oom_score_adj, ...); the host's tunables are not the guest's.</summary>
    public override int PrepareWrite(string rel, Node node, bool truncate, out string hostPath)
    {
        hostPath = node.HostPath ?? "";
        bool own = rel.Split('/')[0] is var first && (IsNumber(first) || first is "self" or "thread-self");
        return own && node.Layer is Layer.Host or Layer.Magic ? 0 : Errno.EACCES;
    }

    public override int PrepareCreate(string rel, Node missing, out string hostPath, out bool commit)
    {
        hostPath = "";
        commit = false;
        return Errno.EACCES;
    }

    public override int Remove(string rel, Node node, bool directory) => Errno.EACCES;
    public override int Rename(string from, Node fromNode, string to, Node toNode, uint flags) => Errno.EACCES;
    public override int Link(string from, Node fromNode, string to, Node toNode) => Errno.EACCES;
    public override int Symlink(string target, string to, Node toNode) => Errno.EACCES;

    /// <summary>The text of generated file <paramref name="rel"/>, which will be <paramref name="material"/>: another
    /// server's text that is the file's as it is, the supervisor writes there itself.</summary>
    private string Render(string rel, string material)
    {
        if (rel == "loadavg") return LoadAvg(ReadHost("/proc/loadavg"));
        if (rel == "locks") return ProcPidText.Locks(ReadHost("/proc/locks"), new GuestPids(context.Need()), GuestFdLocks);
        var parts = rel.Split('/');
        var task = FindTask(int.Parse(parts[0], CultureInfo.InvariantCulture)) ?? throw new NeedProcessesException();
        int at = 1;
        if (parts.Length > 3 && parts[1] == "task")
        {
            task = new TaskView(task.Process, task.Process.Threads.First(t => t.Vtid == int.Parse(parts[2], CultureInfo.InvariantCulture)));
            at = 3;
        }
        string file = string.Join('/', parts[at..]);
        switch (file)
        {
            case "stat" or "status":
                return context.NeedText(ProcOwner.Sched, task.Process.Vpid, task.Vtid, task.HostTid, file, $"{task.HostDir}/{file}", material).Text;
            case "maps":
                return GuestNames(context.NeedText(ProcOwner.Mm, task.Process.Vpid, task.Vtid, task.HostTid, file, hostSource: null));
            case "smaps_rollup":
                return context.NeedText(ProcOwner.Mm, task.Process.Vpid, task.Vtid, task.HostTid, file, $"/proc/{task.Process.HostPid}/smaps_rollup", material).Text;
        }
        string hostText = file is "mounts" or "mountinfo" ? "" : ReadHost($"{task.HostDir}/{file}");
        return file switch
        {
            "mounts" => MountsText(),
            "mountinfo" => MountInfo(),
            "sched" => ProcPidText.Sched(hostText, task.Vtid, new GuestPids(context.Need())),
            "timers" => ProcPidText.Timers(hostText, new GuestPids(context.Need())),
            "children" => ProcPidText.Children(hostText, new GuestPids(context.Need())),
            _ when file.StartsWith("fdinfo/", StringComparison.Ordinal) => ProcPidText.FdInfo(hostText, new GuestPids(context.Need())),
            _ => throw new InvalidOperationException($"/proc/{rel} is not a generated file"),
        };
    }

    /// <summary>The locks the guest's open files hold, as their fdinfo shows them: how an OFD lock in /proc/locks,
    /// which has no owner pid, is known to be the guest's.</summary>
    private IEnumerable<string> GuestFdLocks()
    {
        foreach (var p in context.Need())
        {
            string dir = $"/proc/{p.HostPid}/fdinfo";
            foreach (var e in HostList(dir))
                foreach (var l in ProcPidText.FdInfoLocks(ReadHost(dir + "/" + e.Name)))
                    yield return l;
        }
    }

    /// <summary>
    /// Another server's text with the host path of each mapped file it lists shown as the guest's path of that file (a
    /// file with no guest path, such as a memfd, keeps the host's name, which names nothing of the host's tree), and
    /// " (deleted)" after it when the host path no longer leads to the mapped inode, as Linux says of an unlinked file.
    /// </summary>
    private string GuestNames(ProcText text)
    {
        if (text.Files is not { Count: > 0 } files) return text.Text;
        var lines = text.Text.Split('\n');
        foreach (var f in files)
        {
            if (f.Line < 0 || f.Line >= lines.Length || NameAt(lines[f.Line]) is not int at) continue;
            string line = lines[f.Line];
            lines[f.Line] = line[..at] + Shown(line[at..], f);
        }
        return string.Join('\n', lines);
    }

    /// <summary>Where a maps line's sixth field (its name) starts, after five fields and the padding.</summary>
    private static int? NameAt(string line)
    {
        int i = 0;
        for (int field = 0; field < 5; field++)
        {
            while (i < line.Length && line[i] == ' ') i++;
            while (i < line.Length && line[i] != ' ') i++;
        }
        while (i < line.Length && line[i] == ' ') i++;
        return i < line.Length ? i : null;
    }

    private string Shown(string name, MappedFile f)
    {
        if (!name.StartsWith('/')) return name;
        bool deleted = name.EndsWith(Deleted, StringComparison.Ordinal);
        string host = deleted ? name[..^Deleted.Length] : name;
        deleted = deleted || !HostFs.IsFile(host, f.DevMajor, f.DevMinor, f.Inode);
        return (guestPathOf(host) ?? host) + (deleted ? Deleted : "");
    }

    /// <summary>The host's load averages (the guest's threads run on the host's CPUs), with the guest's own
    /// thread count and last pid in place of the host's.</summary>
    private string LoadAvg(string host)
    {
        var fields = host.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (fields.Length < 5) return host;
        var processes = context.Need();
        int threads = processes.Sum(p => p.Threads.Count);
        int last = processes.Count == 0 ? 0 : processes.Max(p => p.Threads.Select(t => t.Vtid).DefaultIfEmpty(p.Vpid).Max());
        return $"{fields[0]} {fields[1]} {fields[2]} 1/{Num(threads)} {Num(last)}\n";
    }

    /// <summary>A line of the guest's mount table.</summary>
    private readonly record struct MountLine(string GuestPoint, string FsType, string Source, bool ReadOnly, string Options = "relatime");

    /// <summary>
    /// The guest's mounts, each followed by the host mounts below a host directory it binds, as a recursive bind
    /// brings them (a bound /sys shows its cgroup2 and the rest, as it does in a container): a program that looks
    /// for a filesystem in /proc/mounts finds what it can reach. A host mount is left out when a guest mount below
    /// the bind covers it. Read-only when the bind is.
    /// </summary>
    private List<MountLine> MountLines()
    {
        var all = mounts.All;
        var lines = new List<MountLine>();
        List<(string Point, string FsType, string Source, bool ReadOnly, string Options)>? host = null;
        foreach (var m in all)
        {
            lines.Add(new MountLine(m.GuestPoint, m.FsType, m.Source, m.ReadOnly));
            if (m is not HostMount bind) continue;
            host ??= HostMounts();
            string below = bind.HostDir.TrimEnd('/') + "/";
            foreach (var h in host)
            {
                if (!h.Point.StartsWith(below, StringComparison.Ordinal)) continue;
                string guest = bind.GuestPoint.TrimEnd('/') + "/" + h.Point[below.Length..];
                if (all.Any(o => o != m && o.GuestPoint.Length > m.GuestPoint.Length && Covers(o.GuestPoint, guest))) continue;
                lines.Add(new MountLine(guest, h.FsType, h.Source, bind.ReadOnly || h.ReadOnly, h.Options));
            }
        }
        return lines;
    }

    private static bool Covers(string point, string path) =>
        path == point || path.StartsWith(point.TrimEnd('/') + "/", StringComparison.Ordinal);

    /// <summary>The mounts of this server's mount namespace (the one the guest's binds are seen through), in
    /// mountinfo order, names escaped as the host escapes them; their options (the mount's, then the
    /// filesystem's: a cgroup v1 mount names its controllers there) less ro and rw.</summary>
    private static List<(string Point, string FsType, string Source, bool ReadOnly, string Options)> HostMounts()
    {
        var list = new List<(string, string, string, bool, string)>();
        foreach (var line in ReadHost("/proc/self/mountinfo").Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var f = line.Split(' ');
            int dash = Array.IndexOf(f, "-");
            if (dash < 6 || f.Length < dash + 3) continue;
            var options = f[5].Split(',').Concat(f.Length > dash + 3 ? f[dash + 3].Split(',') : [])
                .Where(o => o is not ("ro" or "rw")).Distinct();
            list.Add((f[4], f[dash + 1], f[dash + 2], f[5].Split(',').Contains("ro"), string.Join(',', options)));
        }
        return list;
    }

    private string MountsText()
    {
        var sb = new StringBuilder();
        foreach (var m in MountLines())
            sb.Append($"{m.Source} {m.GuestPoint} {m.FsType} {(m.ReadOnly ? "ro" : "rw")},{m.Options} 0 0\n");
        return sb.ToString();
    }

    private string MountInfo()
    {
        var sb = new StringBuilder();
        var all = MountLines();
        for (int i = 0; i < all.Count; i++)
        {
            var m = all[i];
            int parent = m.GuestPoint == "/" ? 1 : 2 + IndexOfParent(all, i);
            string opts = m.ReadOnly ? "ro" : "rw";
            sb.Append($"{2 + i} {parent} 0:{100 + i} / {m.GuestPoint} {opts},{m.Options} - {m.FsType} {m.Source} {opts}\n");
        }
        return sb.ToString();
    }

    /// <summary>The deepest mount above line <paramref name="at"/>; of two at one point, the later (it is on top).</summary>
    private static int IndexOfParent(List<MountLine> all, int at)
    {
        int best = 0;
        for (int i = 0; i < all.Count; i++)
            if (i != at && (all[i].GuestPoint == "/" || all[at].GuestPoint.StartsWith(all[i].GuestPoint + "/", StringComparison.Ordinal))
                && all[i].GuestPoint.Length >= all[best].GuestPoint.Length)
                best = i;
        return best;
    }

    private TaskView? FindTask(int id)
    {
        foreach (var p in context.Need())
        {
            if (p.Vpid == id) return new TaskView(p, null);
            if (p.Threads.FirstOrDefault(t => t.Vtid == id) is { } t) return new TaskView(p, t);
        }
        return null;
    }

    private string GuestPathOrSelf(string host) => guestPathOf(StripDeleted(host)) is { } g ? g + (host.EndsWith(Deleted, StringComparison.Ordinal) ? Deleted : "") : host;

    private const string Deleted = " (deleted)";

    private static string StripDeleted(string path) => path.EndsWith(Deleted, StringComparison.Ordinal) ? path[..^Deleted.Length] : path;

    private static string ReadHost(string path)
    {
        try
        {
            return PathBytes.Decode(File.ReadAllBytes(path));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return "";
        }
    }

    private static Node Dir() => new(NodeType.Directory, null, Layer.Synthetic, NeedsMerge: true);

    private static Node Link(string target) => new(NodeType.Symlink, null, Layer.Synthetic, target);

    private static bool IsNumber(string s) => s.Length > 0 && s.All(char.IsAsciiDigit);
}

/// <summary>
/// devfs: the devices a program may need (null, zero, full, random, urandom, tty and ptmx when the host has them)
/// are the host's own device nodes; stdin, stdout, stderr and fd are links into /proc/self/fd; nothing else of
/// the host's /dev is reachable. /dev/shm and /dev/pts are mounts of their own.
/// </summary>
internal sealed class DevFs(string guestPoint) : Mount(guestPoint, readOnly: false)
{
    private static readonly string[] Devices = ["null", "zero", "full", "random", "urandom", "tty", "ptmx"];
    private static readonly Dictionary<string, string> Links = new()
    {
        ["stdin"] = "/proc/self/fd/0",
        ["stdout"] = "/proc/self/fd/1",
        ["stderr"] = "/proc/self/fd/2",
        ["fd"] = "/proc/self/fd",
    };

    public override string FsType => "devtmpfs";
    public override string Source => "udev";

    public override Node Lookup(string rel)
    {
        if (rel.Length == 0) return new Node(NodeType.Directory, null, Layer.Synthetic, NeedsMerge: true);
        if (Links.TryGetValue(rel, out var target)) return new Node(NodeType.Symlink, null, Layer.Synthetic, target);
        if (Devices.Contains(rel) && HostFs.TypeOf("/dev/" + rel) is not NodeType.None) return HostNode("/dev/" + rel, Layer.Host);
        return Node.Missing(null, Layer.Synthetic);
    }

    public override IEnumerable<DirEntry> List(string rel)
    {
        foreach (var d in Devices)
            if (HostFs.TypeOf("/dev/" + d) is var t and not NodeType.None) yield return new DirEntry(d, t);
        foreach (var (name, target) in Links) yield return new DirEntry(name, NodeType.Symlink, target);
    }

    public override string? AttributesOf(string rel, Node node) => "/dev";

    public override int PrepareCreate(string rel, Node missing, out string hostPath, out bool commit)
    {
        hostPath = "";
        commit = false;
        return Errno.EACCES;
    }

    public override int PrepareWrite(string rel, Node node, bool truncate, out string hostPath)
    {
        hostPath = node.HostPath ?? "";
        return node.Layer == Layer.Host ? 0 : Errno.EACCES;
    }

    public override int Remove(string rel, Node node, bool directory) => Errno.EPERM;
    public override int Rename(string from, Node fromNode, string to, Node toNode, uint flags) => Errno.EPERM;
    public override int Link(string from, Node fromNode, string to, Node toNode) => Errno.EPERM;
    public override int Symlink(string target, string to, Node toNode) => Errno.EPERM;
}
