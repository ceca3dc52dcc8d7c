using System.Runtime.InteropServices;
using UmlMicro.Contracts.Linux;

namespace UmlMicro.Supervisor.Native;

/// <summary>
/// Every native call of the supervisor, in one place. Tmds.LibC 0.5.0 has no ptrace, waitpid,
/// process_vm_readv/writev, posix_spawn or tgkill, so they are declared here; for the rest the
/// supervisor uses Tmds.LibC.
/// </summary>
internal static unsafe partial class Interop
{
    private const string Libc = "libc";

    [LibraryImport(Libc, EntryPoint = "ptrace", SetLastError = true)]
    internal static partial long ptrace(long request, int pid, nint addr, nint data);

    [LibraryImport(Libc, SetLastError = true)]
    internal static partial int waitpid(int pid, int* status, int options);

    [LibraryImport(Libc, SetLastError = true)]
    internal static partial nint process_vm_readv(int pid, IoVec* local, ulong liovcnt, IoVec* remote, ulong riovcnt, ulong flags);

    [LibraryImport(Libc, SetLastError = true)]
    internal static partial nint process_vm_writev(int pid, IoVec* local, ulong liovcnt, IoVec* remote, ulong riovcnt, ulong flags);

    /// <summary>Returns an error number (not -1/errno), as POSIX specifies.</summary>
    [LibraryImport(Libc)]
    internal static partial int posix_spawn(int* pid, byte* path, nint fileActions, nint attributes, byte** argv, byte** envp);

    [LibraryImport(Libc, SetLastError = true)]
    internal static partial int kill(int pid, int signal);

    [LibraryImport(Libc, SetLastError = true)]
    internal static partial int tgkill(int tgid, int tid, int signal);

    /// <summary>A pidfd names one process for good: a signal sent through it can never reach a later owner of its pid.</summary>
    [LibraryImport(Libc, SetLastError = true)]
    internal static partial int pidfd_open(int pid, uint flags);

    [LibraryImport(Libc, SetLastError = true)]
    internal static partial int pidfd_send_signal(int pidfd, int signal, nint info, uint flags);

    [LibraryImport(Libc, SetLastError = true)]
    internal static partial int close(int fd);

    [LibraryImport(Libc, EntryPoint = "memfd_create", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int memfd_create(string name, uint flags);

    private const uint MFD_CLOEXEC = 1;

    /// <summary>A file that lives in memory only and has no path a guest could name; null and errno when it cannot be made.</summary>
    internal static Microsoft.Win32.SafeHandles.SafeFileHandle? MemFd(string name)
    {
        int fd = memfd_create(name, MFD_CLOEXEC);
        return fd < 0 ? null : new Microsoft.Win32.SafeHandles.SafeFileHandle(fd, ownsHandle: true);
    }

    [LibraryImport(Libc, SetLastError = true)]
    internal static partial int tcgetpgrp(int fd);

    [LibraryImport(Libc, SetLastError = true)]
    internal static partial int tcsetpgrp(int fd, int pgrp);

    [LibraryImport(Libc)]
    internal static partial int getpgrp();

    /// <summary>how: SIG_BLOCK 0, SIG_UNBLOCK 1, SIG_SETMASK 2; sets are the kernel's 64-bit masks.</summary>
    [LibraryImport(Libc)]
    internal static partial int pthread_sigmask(int how, ulong* set, ulong* oldset);

    internal const int SIGTTOU = 22;

    /// <summary>Host CPU masks cover 1024 CPUs, as glibc's cpu_set_t.</summary>
    internal const int CpuMaskWords = 16;

    /// <summary>Sets the host CPUs thread <paramref name="tid"/> (0: the calling thread) may run on; what it starts inherits them.</summary>
    internal static bool SetAffinity(int tid, ReadOnlySpan<ulong> mask)
    {
        fixed (ulong* m = mask) return sched_setaffinity(tid, (nuint)(mask.Length * sizeof(ulong)), m) == 0;
    }

    /// <summary>The host CPUs the calling thread may run on (all zero if the host will not say).</summary>
    internal static ulong[] GetAffinity()
    {
        var mask = new ulong[CpuMaskWords];
        fixed (ulong* m = mask)
            if (sched_getaffinity(0, (nuint)(mask.Length * sizeof(ulong)), m) < 0) Array.Clear(mask);
        return mask;
    }

    /// <summary>Sets host thread <paramref name="tid"/>'s nice value from the supervisor, as far as the host lets it
    /// (lowering one needs CAP_SYS_NICE or RLIMIT_NICE; a refusal leaves the higher value, which harms nobody).</summary>
    internal static void SetHostNice(int tid, int nice) => setpriority(PRIO_PROCESS, (uint)tid, nice);

    /// <summary>Host thread <paramref name="tid"/>'s nice value, or null when it is gone.</summary>
    internal static int? HostNice(int tid)
    {
        Marshal.SetLastPInvokeError(0);
        int nice = getpriority(PRIO_PROCESS, (uint)tid);
        return nice == -1 && Marshal.GetLastPInvokeError() != 0 ? null : nice;
    }

    private const int PRIO_PROCESS = 0;

    [LibraryImport(Libc, SetLastError = true)]
    private static partial int getpriority(int which, uint who);

    [LibraryImport(Libc, SetLastError = true)]
    private static partial int setpriority(int which, uint who, int prio);

    [LibraryImport(Libc, SetLastError = true)]
    private static partial int sched_setaffinity(int pid, nuint size, ulong* mask);

    [LibraryImport(Libc, SetLastError = true)]
    private static partial int sched_getaffinity(int pid, nuint size, ulong* mask);

    /// <summary>
    /// The CPU time host process <paramref name="pid"/> (all its threads) has run, in ns, or -1 when it is gone: one
    /// clock_gettime on its CPU clock (Linux's MAKE_PROCESS_CPUCLOCK(pid, CPUCLOCK_SCHED)), which Linux lets any process
    /// read of any other; a single thread's clock it lets only that thread's own process read.
    /// </summary>
    internal static long ProcessCpuTime(int pid)
    {
        var ts = stackalloc long[2];
        int clock = (~pid << 3) | 2; // CPUCLOCK_SCHED, process-wide
        return clock_gettime(clock, ts) == 0 ? ts[0] * 1_000_000_000 + ts[1] : -1;
    }

    /// <summary>
    /// The protocol of the socket at <paramref name="fdPath"/> (/proc/TID/fd/N), as sockfs names it in the xattr
    /// system.sockprotoname ("UNIX", "UNIX-STREAM", "TCP", "UDPv6", ...), or null when it is no socket or is gone.
    /// </summary>
    internal static string? SocketProtocol(string fdPath)
    {
        var name = stackalloc byte[32];
        nint n = getxattr(fdPath, "system.sockprotoname", name, 32);
        return n <= 0 ? null : System.Text.Encoding.ASCII.GetString(name, (int)n).TrimEnd('\0');
    }

    [LibraryImport(Libc, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial nint getxattr(string path, string name, byte* value, nuint size);

    [LibraryImport(Libc, SetLastError = true)]
    private static partial int clock_gettime(int clock, long* ts);

    [LibraryImport(Libc)]
    internal static partial int sched_getcpu();

    // struct stat on x86-64; only the device, inode, link count and mode are read.
    [StructLayout(LayoutKind.Sequential)]
    private struct StatBuf
    {
        public ulong Dev, Ino, Nlink;
        public uint Mode, Uid, Gid, Pad0;
        public ulong Rdev;
        public long Size, BlkSize, Blocks;
        public long Atime, AtimeNsec, Mtime, MtimeNsec, Ctime, CtimeNsec;
        public long R0, R1, R2;
    }

    [LibraryImport(Libc, EntryPoint = "stat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int stat_(string path, StatBuf* buf);

    [LibraryImport(Libc, EntryPoint = "readlink", SetLastError = true, StringMarshalling = StringMarshalling.Custom, StringMarshallingCustomType = typeof(PathMarshaller))]
    private static partial nint readlink_(string path, byte* buf, nint size);

    [LibraryImport(Libc, EntryPoint = "stat", SetLastError = true, StringMarshalling = StringMarshalling.Custom, StringMarshallingCustomType = typeof(PathMarshaller))]
    private static partial int statBytes_(string path, StatBuf* buf);

    [LibraryImport(Libc, EntryPoint = "lstat", SetLastError = true, StringMarshalling = StringMarshalling.Custom, StringMarshallingCustomType = typeof(PathMarshaller))]
    private static partial int lstatBytes_(string path, StatBuf* buf);

    /// <summary>Whether anything is at <paramref name="path"/> (a link not followed), by the path's own bytes.</summary>
    internal static bool Exists(string path)
    {
        StatBuf st;
        return lstatBytes_(path, &st) == 0;
    }

    [LibraryImport(Libc, EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Custom, StringMarshallingCustomType = typeof(PathMarshaller))]
    private static partial int openBytes_(string path, int flags, uint mode);

    /// <summary>A file made (or emptied) at <paramref name="path"/> for writing, by the path's own bytes; an IOException
    /// that names the errno when it cannot be.</summary>
    internal static Microsoft.Win32.SafeHandles.SafeFileHandle CreateFile(string path)
    {
        int fd = openBytes_(path, LinuxFlags.O_WRONLY | LinuxFlags.O_CREAT | LinuxFlags.O_TRUNC | LinuxFlags.O_CLOEXEC, 0x1b6); // 0666, less the umask
        return fd >= 0 ? new Microsoft.Win32.SafeHandles.SafeFileHandle(fd, ownsHandle: true) : throw new IOException(Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError()));
    }

    /// <summary>
    /// A name for <paramref name="path"/> that .NET's file APIs reach the right file by: the path itself when it is
    /// UTF-8, else the host's link to an O_PATH fd opened by its bytes (/proc/self/fd/N), kept open for the run. The
    /// path itself when nothing is there (the caller then says so).
    /// </summary>
    internal static string DotNetPath(string path)
    {
        if (!UmlMicro.Contracts.Linux.PathBytes.HasEscape(path)) return path;
        int fd = openBytes_(path, LinuxFlags.O_PATH | LinuxFlags.O_CLOEXEC, 0);
        return fd < 0 ? path : $"/proc/self/fd/{fd}";
    }

    /// <summary>Whether <paramref name="path"/> (links followed) is a directory, by the path's own bytes.</summary>
    internal static bool IsDirectory(string path)
    {
        StatBuf st;
        return statBytes_(path, &st) == 0 && (st.Mode & 0xf000) == 0x4000;
    }

    [LibraryImport(Libc, EntryPoint = "getcwd", SetLastError = true)]
    private static partial byte* getcwd_(byte* buf, nint size);

    /// <summary>The supervisor's working directory by its own bytes (PathBytes): .NET's decodes it as UTF-8, and a byte
    /// that is not UTF-8 is lost there.</summary>
    internal static string HostCwd()
    {
        const int Size = 4096; // PATH_MAX
        byte* buf = stackalloc byte[Size];
        return getcwd_(buf, Size) is null ? Environment.CurrentDirectory : UmlMicro.Contracts.Linux.PathBytes.DecodeZ(new ReadOnlySpan<byte>(buf, Size));
    }

    /// <summary>Whether <paramref name="path"/> (links followed) is a file that is no directory and that someone may
    /// execute, by the path's own bytes.</summary>
    internal static bool IsExecutableFile(string path)
    {
        StatBuf st;
        return statBytes_(path, &st) == 0 && (st.Mode & 0xf000) != 0x4000 && (st.Mode & 0x49) != 0; // not S_IFDIR; any x bit
    }

    /// <summary>
    /// The command line's arguments with their own bytes (PathBytes) where .NET's <paramref name="args"/> decoded one as
    /// UTF-8 and lost bytes that are not: a guest program's path or argument made of such bytes reaches it unchanged.
    /// The raw arguments are the last ones of /proc/self/cmdline (before them: the host and the dll, when not an apphost).
    /// </summary>
    internal static string[] RawArgs(string[] args)
    {
        byte[] cmdline;
        try
        {
            cmdline = File.ReadAllBytes("/proc/self/cmdline");
        }
        catch (IOException)
        {
            return args;
        }
        var raw = new List<byte[]>();
        for (int start = 0; start < cmdline.Length;)
        {
            int end = Array.IndexOf(cmdline, (byte)0, start);
            if (end < 0) end = cmdline.Length;
            raw.Add(cmdline[start..end]);
            start = end + 1;
        }
        if (raw.Count < args.Length) return args;
        var result = (string[])args.Clone();
        int offset = raw.Count - args.Length;
        for (int i = 0; i < args.Length; i++)
        {
            var bytes = raw[offset + i];
            // The same argument: equal as .NET decodes it, or (its host decodes invalid UTF-8 with its own count of
            // U+FFFD) equal in every ASCII character.
            if (System.Text.Encoding.UTF8.GetString(bytes) == args[i] || SameAscii(bytes, args[i]))
                result[i] = UmlMicro.Contracts.Linux.PathBytes.Decode(bytes);
        }
        return result;
    }

    private static bool SameAscii(byte[] bytes, string decoded)
    {
        int j = 0;
        foreach (byte b in bytes)
        {
            if (b >= 0x80) continue;
            while (j < decoded.Length && decoded[j] >= 0x80) j++;
            if (j == decoded.Length || decoded[j] != b) return false;
            j++;
        }
        while (j < decoded.Length && decoded[j] >= 0x80) j++;
        return j == decoded.Length;
    }

    /// <summary>
    /// The text of the link <paramref name="path"/> (by the path's own bytes), its bytes decoded as
    /// every path is (<see cref="UmlMicro.Contracts.Linux.PathBytes"/>); null when it is gone or no link. .NET's
    /// LinkTarget would decode them as UTF-8 and lose every byte that is not.
    /// </summary>
    internal static string? ReadLink(string path)
    {
        const int Size = 4096 + 64; // PATH_MAX, and " (deleted)"
        var buf = stackalloc byte[Size];
        nint n = readlink_(path, buf, Size);
        return n < 0 ? null : UmlMicro.Contracts.Linux.PathBytes.Decode(new ReadOnlySpan<byte>(buf, (int)n));
    }

    /// <summary>Whether <paramref name="path"/> (links followed) is a character device.</summary>
    internal static bool IsCharDevice(string path)
    {
        StatBuf st;
        return stat_(path, &st) == 0 && (st.Mode & 0xf000) == 0x2000; // S_IFCHR
    }

    /// <summary>Whether <paramref name="path"/> (links followed: /proc/TID/fd/N is the fd's own directory) is a directory
    /// that was removed: rmdir leaves it no links, and Linux finds no name in it any more.</summary>
    internal static bool IsRemovedDirectory(string path)
    {
        StatBuf st;
        return stat_(path, &st) == 0 && (st.Mode & 0xf000) == 0x4000 && st.Nlink == 0; // S_IFDIR
    }

    [LibraryImport(Libc)]
    internal static partial uint geteuid();

    [LibraryImport(Libc)]
    internal static partial uint getegid();

    [LibraryImport(Libc, SetLastError = true)]
    private static partial nint pread(int fd, byte* buf, nuint count, long offset);

    [LibraryImport(Libc, SetLastError = true)]
    private static partial long syscall(long number, int a, int b, uint c);

    private const long SysPidfdGetfd = 438;

    /// <summary>
    /// A copy of descriptor <paramref name="fd"/> of the process <paramref name="pidfd"/> names (pidfd_getfd: the caller
    /// must be allowed to ptrace it), as a handle of this process; null when it cannot be taken.
    /// </summary>
    internal static Microsoft.Win32.SafeHandles.SafeFileHandle? TakeFd(int pidfd, int fd)
    {
        int mine = (int)syscall(SysPidfdGetfd, pidfd, fd, 0);
        return mine < 0 ? null : new Microsoft.Win32.SafeHandles.SafeFileHandle(mine, ownsHandle: true);
    }

    /// <summary>All of a file read from its start (a /proc file: each read from offset 0 makes it afresh).</summary>
    internal static string ReadWhole(System.Runtime.InteropServices.SafeHandle file)
    {
        var text = new System.Text.StringBuilder();
        var buf = new byte[16384];
        bool added = false;
        try
        {
            file.DangerousAddRef(ref added);
            int fd = (int)file.DangerousGetHandle();
            long offset = 0;
            while (true)
            {
                nint n;
                fixed (byte* p = buf) n = pread(fd, p, (nuint)buf.Length, offset);
                if (n < 0 && LastErrno == EINTR) continue;
                if (n <= 0) break;
                text.Append(System.Text.Encoding.UTF8.GetString(buf, 0, (int)n));
                offset += n;
            }
        }
        finally
        {
            if (added) file.DangerousRelease();
        }
        return text.ToString();
    }

    /// <summary>
    /// The device (split as /proc/PID/maps prints it) and inode of the file <paramref name="path"/> leads to; stat
    /// follows links, so /proc/TID/fd/N gives the very file the fd holds, even one that was unlinked or is a memfd.
    /// </summary>
    internal static bool FileIdentity(string path, out int major, out int minor, out ulong inode)
    {
        StatBuf st;
        if (stat_(path, &st) != 0)
        {
            (major, minor, inode) = (0, 0, 0);
            return false;
        }
        // glibc's gnu_dev_major/minor: the 64-bit dev_t keeps the low 12 bits of the major and 8 of the minor low.
        major = (int)(((st.Dev >> 8) & 0xfff) | ((st.Dev >> 32) & 0xfffff000));
        minor = (int)((st.Dev & 0xff) | ((st.Dev >> 12) & 0xffffff00));
        inode = st.Ino;
        return true;
    }

    [StructLayout(LayoutKind.Sequential)]
    internal struct IoVec
    {
        public nint Base;
        public nuint Length;
    }

    internal static int LastErrno => Marshal.GetLastPInvokeError();

    /// <summary>posix_spawn (vfork-based, safe from managed code) of <paramref name="argv"/>[0] with that argv and
    /// environment; 0 and the child's pid, or the errno.</summary>
    internal static int Spawn(IReadOnlyList<string> argv, IReadOnlyList<string> env, out int pid) => Spawn(argv, env, 0, search: false, out pid);

    private static int Spawn(IReadOnlyList<string> argv, IReadOnlyList<string> env, nint fileActions, bool search, out int pid, nint attributes = 0)
    {
        // The strings' own bytes (PathBytes): an argument or a variable that is not UTF-8 reaches the program as it was.
        var blocks = argv.Concat(env).Select(a =>
        {
            var bytes = UmlMicro.Contracts.Linux.PathBytes.EncodeZ(a);
            nint block = Marshal.AllocCoTaskMem(bytes.Length);
            Marshal.Copy(bytes, 0, block, bytes.Length);
            return block;
        }).ToArray();
        try
        {
            var ptrs = stackalloc byte*[blocks.Length + 2];
            for (int i = 0; i < argv.Count; i++) ptrs[i] = (byte*)blocks[i];
            ptrs[argv.Count] = null;
            var envp = ptrs + argv.Count + 1;
            for (int i = 0; i < env.Count; i++) envp[i] = (byte*)blocks[argv.Count + i];
            envp[env.Count] = null;
            int child;
            int err = search ? posix_spawnp(&child, ptrs[0], fileActions, attributes, ptrs, envp) : posix_spawn(&child, ptrs[0], fileActions, attributes, ptrs, envp);
            pid = child;
            return err;
        }
        finally
        {
            foreach (var b in blocks) Marshal.FreeCoTaskMem(b);
        }
    }

    /// <summary>
    /// posix_spawnp of <paramref name="argv"/>[0] (looked up in PATH) with <paramref name="stdin"/> and
    /// <paramref name="stdout"/> as its fd 0 and 1, in a process group of its own (so that what it starts, a wrapper
    /// script's program, can be killed with it); 0 and the child's pid, or the errno.
    /// </summary>
    internal static int SpawnWithPipes(IReadOnlyList<string> argv, IReadOnlyList<string> env, int stdin, int stdout, out int pid)
    {
        pid = 0;
        var actions = stackalloc byte[SpawnFileActionsSize];
        var attributes = stackalloc byte[SpawnAttributesSize];
        int err = posix_spawn_file_actions_init(actions);
        if (err != 0) return err;
        if ((err = posix_spawnattr_init(attributes)) != 0)
        {
            posix_spawn_file_actions_destroy(actions);
            return err;
        }
        try
        {
            if ((err = posix_spawn_file_actions_adddup2(actions, stdin, 0)) != 0
                || (err = posix_spawn_file_actions_adddup2(actions, stdout, 1)) != 0
                || (err = posix_spawnattr_setpgroup(attributes, 0)) != 0
                || (err = posix_spawnattr_setflags(attributes, POSIX_SPAWN_SETPGROUP)) != 0)
                return err;
            return Spawn(argv, env, (nint)actions, search: true, out pid, (nint)attributes);
        }
        finally
        {
            posix_spawnattr_destroy(attributes);
            posix_spawn_file_actions_destroy(actions);
        }
    }

    private const short POSIX_SPAWN_SETPGROUP = 0x02;

    /// <summary>glibc's posix_spawnattr_t is 336 bytes on x86-64; room to spare.</summary>
    private const int SpawnAttributesSize = 512;

    [LibraryImport(Libc)]
    private static partial int posix_spawnattr_init(byte* attributes);

    [LibraryImport(Libc)]
    private static partial int posix_spawnattr_setflags(byte* attributes, short flags);

    [LibraryImport(Libc)]
    private static partial int posix_spawnattr_setpgroup(byte* attributes, int pgroup);

    [LibraryImport(Libc)]
    private static partial int posix_spawnattr_destroy(byte* attributes);

    /// <summary>glibc's posix_spawn_file_actions_t is 80 bytes on x86-64; room to spare.</summary>
    private const int SpawnFileActionsSize = 128;

    [LibraryImport(Libc)]
    private static partial int posix_spawnp(int* pid, byte* file, nint fileActions, nint attributes, byte** argv, byte** envp);

    [LibraryImport(Libc)]
    private static partial int posix_spawn_file_actions_init(byte* actions);

    [LibraryImport(Libc)]
    private static partial int posix_spawn_file_actions_adddup2(byte* actions, int fd, int newfd);

    [LibraryImport(Libc)]
    private static partial int posix_spawn_file_actions_destroy(byte* actions);

    /// <summary>A pipe whose both ends close on exec (a child gets one only by an explicit dup2).</summary>
    internal static bool Pipe(out int read, out int write)
    {
        var fds = stackalloc int[2];
        bool ok = pipe2(fds, O_CLOEXEC) == 0;
        (read, write) = ok ? (fds[0], fds[1]) : (-1, -1);
        return ok;
    }

    private const int O_CLOEXEC = 0x80000, WNOHANG = 1;

    [LibraryImport(Libc, SetLastError = true)]
    private static partial int pipe2(int* fds, int flags);

    /// <summary>Reaps child <paramref name="pid"/> if it has ended (never waiting for it): true once it is reaped.</summary>
    internal static bool TryReap(int pid)
    {
        int status;
        int r;
        while ((r = waitpid(pid, &status, WNOHANG)) < 0 && LastErrno == EINTR) { }
        return r == pid || (r < 0 && LastErrno == ECHILD);
    }

    /// <summary>
    /// Makes SIGCHLD's disposition the default (discarded when sent) instead of the .NET runtime's handler. Every ptrace
    /// stop of every guest task sends the tracer's process a SIGCHLD; the runtime's handler would wake its signal thread
    /// for each (a quarter of a CPU at 100,000 stops/s, and a third of each emulated call's cost). The supervisor starts
    /// its children itself and reaps them with waitpid, so nothing here needs the signal; waitpid does not either.
    /// </summary>
    internal static void DefaultSigChld()
    {
        var action = stackalloc byte[SigActionSize]; // all zero: SIG_DFL, no flags, empty mask
        new Span<byte>(action, SigActionSize).Clear();
        sigaction(SIGCHLD, action, null);
    }

    /// <summary>The kernel's struct sigaction as glibc passes it: 152 bytes on x86-64; room to spare.</summary>
    private const int SigActionSize = 256;
    private const int SIGCHLD = 17;

    [LibraryImport(Libc, SetLastError = true)]
    private static partial int sigaction(int signal, byte* action, byte* old);

    /// <summary>The process's own environment block (what a child started with execve would inherit).</summary>
    internal static byte** Environ
    {
        get
        {
            var libc = NativeLibrary.Load("libc.so.6");
            return *(byte***)NativeLibrary.GetExport(libc, "environ");
        }
    }

    // waitpid options and status decoding (x86-64 Linux)
    internal const int WUNTRACED = 2, __WNOTHREAD = 0x20000000, __WALL = 0x40000000;
    internal const int ECHILD = 10, EINTR = 4, ESRCH = 3;

    internal static bool WIFEXITED(int s) => (s & 0x7f) == 0;
    internal static int WEXITSTATUS(int s) => (s >> 8) & 0xff;
    internal static bool WIFSIGNALED(int s) => (s & 0x7f) != 0 && (s & 0x7f) != 0x7f;
    internal static int WTERMSIG(int s) => s & 0x7f;
    internal static bool WIFSTOPPED(int s) => (s & 0xff) == 0x7f;
    internal static int WSTOPSIG(int s) => (s >> 8) & 0xff;
    internal static int PtraceEvent(int s) => (s >> 16) & 0xff;
}
