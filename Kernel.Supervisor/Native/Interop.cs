using System.Runtime.InteropServices;

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

    /// <summary>Pins thread <paramref name="tid"/> (0: the calling thread) to one host CPU; what it starts inherits the pin.</summary>
    internal static bool PinToCpu(int tid, int cpu)
    {
        var mask = stackalloc ulong[16];
        mask[cpu / 64] = 1UL << (cpu % 64);
        return sched_setaffinity(tid, 16 * sizeof(ulong), mask) == 0;
    }

    [LibraryImport(Libc, SetLastError = true)]
    private static partial int sched_setaffinity(int pid, nuint size, ulong* mask);

    [LibraryImport(Libc)]
    internal static partial int sched_getcpu();

    [StructLayout(LayoutKind.Sequential)]
    internal struct IoVec
    {
        public nint Base;
        public nuint Length;
    }

    internal static int LastErrno => Marshal.GetLastPInvokeError();

    /// <summary>posix_spawn (vfork-based, safe from managed code) of <paramref name="argv"/>[0] with that argv and
    /// environment; 0 and the child's pid, or the errno.</summary>
    internal static int Spawn(IReadOnlyList<string> argv, IReadOnlyList<string> env, out int pid)
    {
        var blocks = argv.Concat(env).Select(a => Marshal.StringToCoTaskMemUTF8(a)).ToArray();
        try
        {
            var ptrs = stackalloc byte*[blocks.Length + 2];
            for (int i = 0; i < argv.Count; i++) ptrs[i] = (byte*)blocks[i];
            ptrs[argv.Count] = null;
            var envp = ptrs + argv.Count + 1;
            for (int i = 0; i < env.Count; i++) envp[i] = (byte*)blocks[argv.Count + i];
            envp[env.Count] = null;
            int child;
            int err = posix_spawn(&child, ptrs[0], 0, 0, ptrs, envp);
            pid = child;
            return err;
        }
        finally
        {
            foreach (var b in blocks) Marshal.FreeCoTaskMem(b);
        }
    }

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
