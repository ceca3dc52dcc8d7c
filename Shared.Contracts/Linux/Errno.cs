using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Threading.Tasks;
namespace UmlMicro.Contracts.Linux;

/// <summary>Linux x86-64 errno values the kernel hands back to guests (positive; a syscall returns the negation).</summary>
public static class Errno
{
    public const int EPERM = 1, ENOENT = 2, ESRCH = 3, EINTR = 4, EIO = 5, ENXIO = 6, E2BIG = 7, ENOEXEC = 8,
        EBADF = 9, ECHILD = 10, EAGAIN = 11, ENOMEM = 12, EACCES = 13, EFAULT = 14, EBUSY = 16, EEXIST = 17,
        EXDEV = 18, ENODEV = 19, ENOTDIR = 20, EISDIR = 21, EINVAL = 22, ENFILE = 23, EMFILE = 24, ENOTTY = 25,
        EFBIG = 27, ENOSPC = 28, ESPIPE = 29, EROFS = 30, EMLINK = 31, EPIPE = 32, ERANGE = 34,
        ENAMETOOLONG = 36, ENOSYS = 38, ENOTEMPTY = 39, ELOOP = 40, ENODATA = 61, EOPNOTSUPP = 95, EADDRINUSE = 98;
}

/// <summary>Signal numbers (x86-64).</summary>
public static class Signals
{
    public const int SIGHUP = 1, SIGINT = 2, SIGQUIT = 3, SIGILL = 4, SIGTRAP = 5, SIGABRT = 6, SIGBUS = 7,
        SIGFPE = 8, SIGKILL = 9, SIGUSR1 = 10, SIGSEGV = 11, SIGUSR2 = 12, SIGPIPE = 13, SIGALRM = 14,
        SIGTERM = 15, SIGCHLD = 17, SIGCONT = 18, SIGSTOP = 19, SIGTSTP = 20, SIGTTIN = 21, SIGTTOU = 22,
        SIGSYS = 31;
}

/// <summary>Flag values of the Linux ABI that the kernel's servers and the supervisor both interpret.</summary>
public static class LinuxFlags
{
    public const int AT_FDCWD = -100;
    public const int AT_SYMLINK_NOFOLLOW = 0x100, AT_REMOVEDIR = 0x200, AT_SYMLINK_FOLLOW = 0x400, AT_EMPTY_PATH = 0x1000;
    public const int O_ACCMODE = 3, O_WRONLY = 1, O_RDWR = 2, O_CREAT = 0x40, O_EXCL = 0x80, O_TRUNC = 0x200,
        O_APPEND = 0x400, O_DIRECTORY = 0x10000, O_NOFOLLOW = 0x20000, O_CLOEXEC = 0x80000, O_PATH = 0x200000;
    public const ulong CLONE_VM = 0x100, CLONE_FS = 0x200, CLONE_FILES = 0x400, CLONE_SIGHAND = 0x800,
        CLONE_PIDFD = 0x1000, CLONE_VFORK = 0x4000, CLONE_PARENT = 0x8000, CLONE_THREAD = 0x10000,
        CLONE_NEWNS = 0x20000, CLONE_SETTLS = 0x80000, CLONE_PARENT_SETTID = 0x100000,
        CLONE_CHILD_CLEARTID = 0x200000, CLONE_CHILD_SETTID = 0x1000000, CLONE_NEWUTS = 0x04000000, CLONE_NEWIPC = 0x08000000,
        CLONE_NEWUSER = 0x10000000,
        CLONE_NEWPID = 0x20000000, CLONE_NEWNET = 0x40000000, CLONE_UNTRACED = 0x00800000;
    /// <summary>openat2's open_how.resolve: how a path may be resolved (linux/openat2.h).</summary>
    public const int RESOLVE_NO_XDEV = 0x01, RESOLVE_NO_MAGICLINKS = 0x02, RESOLVE_NO_SYMLINKS = 0x04, RESOLVE_BENEATH = 0x08,
        RESOLVE_IN_ROOT = 0x10, RESOLVE_CACHED = 0x20;
    public const int PATH_MAX = 4096;
    /// <summary>Mode bits: the file type mask and the set-id and sticky bits.</summary>
    public const uint S_IFMT = 0xF000, S_IFDIR = 0x4000, S_IFREG = 0x8000, S_IFLNK = 0xA000, S_IFCHR = 0x2000, S_IFBLK = 0x6000,
        S_ISUID = 0x800, S_ISGID = 0x400, S_ISVTX = 0x200;
    /// <summary>What inode_permission is asked for (the values of access's X_OK, W_OK, R_OK).</summary>
    public const int MAY_EXEC = 1, MAY_WRITE = 2, MAY_READ = 4;
    /// <summary>The capabilities the permission checks of a filesystem and a scheduler consult.</summary>
    public const int CAP_CHOWN = 0, CAP_DAC_OVERRIDE = 1, CAP_DAC_READ_SEARCH = 2, CAP_FOWNER = 3, CAP_FSETID = 4, CAP_SYS_ADMIN = 21,
        CAP_SYS_NICE = 23, CAP_MKNOD = 27;
    /// <summary>setxattr's flags, and the limits of an extended attribute's name, value and list (linux/xattr.h, limits.h).</summary>
    public const int XATTR_CREATE = 1, XATTR_REPLACE = 2, XATTR_NAME_MAX = 255, XATTR_SIZE_MAX = 65536, XATTR_LIST_MAX = 65536;
    /// <summary>prctl's option that changes who reaps orphans.</summary>
    public const int PR_SET_CHILD_SUBREAPER = 36;
    public const int SECCOMP_SET_MODE_FILTER = 1;
    public const uint SECCOMP_FILTER_FLAG_TSYNC = 1, SECCOMP_FILTER_FLAG_LOG = 2, SECCOMP_FILTER_FLAG_SPEC_ALLOW = 4,
        SECCOMP_FILTER_FLAG_NEW_LISTENER = 8, SECCOMP_FILTER_FLAG_TSYNC_ESRCH = 16, SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV = 32;
    /// <summary>BPF_MAXINSNS: the longest classic-BPF program Linux accepts.</summary>
    public const int BPF_MAXINSNS = 4096;
}
