/* umlmicro-launch: the first guest process before it becomes the guest.
 *
 *   umlmicro-launch SIGIGN FILTER LAYOUT NOFILE WALL PATH ARGV0 [ARGS...]
 *
 * SIGIGN is the hex mask of signals the user's shell left ignored (SigIgn of /proc/PID/status): the
 * guest inherits those as ignored and every other signal at its default, as it would have without
 * the supervisor in between (the .NET runtime ignores SIGPIPE, and exec keeps ignored signals).
 * NOFILE is "SOFT:HARD", the guest's RLIMIT_NOFILE, each a number or "-" to keep the limit it inherited: set here,
 * before the tracer seizes it, so that no rule the kernel applies to the guest's own setrlimit is in the way.
 * WALL is the host kernel's wall around the guest (README "Security"): a plan file the supervisor wrote, or "-"
 * for none. Its first line unshares the namespaces; the launcher then stops itself once, so that the supervisor
 * writes the new user namespace's uid and gid maps from outside (only a process of the parent namespace may map
 * more than its own id, and a file cannot be made in a new mount before its owner is mapped), and carries out the
 * rest of the plan when continued: the mounts, the loopback, the hostname, then what can never be undone —
 * capabilities cut to the bounding set, no_new_privs, Landlock, the host's seccomp deny layer.
 * The plan unshares a pid namespace, which only the launcher's children enter: it makes two with CLONE_PARENT (so
 * they are the supervisor's) and exits. The first is the namespace's init, idle until the supervisor kills it; the
 * second goes on below and becomes guest pid 1 (see start_pid_namespace). Without a plan the launcher itself goes on.
 * That process leads its own process group (and takes the terminal's foreground if the supervisor had it), becomes
 * a child subreaper, so orphaned guest processes are reparented to guest pid 1 (the setting survives execve), and
 * stops itself so the supervisor's tracer thread can PTRACE_SEIZE it with its options.
 * Once resumed it installs FILTER (hex bytes of a struct sock_filter array, or "-" for none) as a
 * seccomp filter — only now, after the tracer set PTRACE_O_TRACESECCOMP, or trapped calls would
 * fail with ENOSYS — LAYOUT "fixed" turns the host's address-space randomisation off for the guest
 * (personality ADDR_NO_RANDOMIZE, which every guest process inherits across fork and execve, so the same
 * program gets the same addresses in every run), "random" keeps it — and execs PATH with the rest of its arguments and the environment it was given.
 * The exec is the first syscall the kernel sees from the guest.
 *
 *   umlmicro-launch --tick MICROSECONDS
 *
 * is the scheduler's ticker instead: the tracer thread can only sleep in waitpid, so its clock is a
 * traced child that stops itself (SIGSTOP) every MICROSECONDS. The tracer swallows each stop as a tick
 * and resumes it while the virtual CPUs are contended; otherwise it leaves it stopped, costing nothing.
 *
 *   umlmicro-launch --doorbell
 *
 * is the tracer's doorbell: a traced child asleep in pause(). A syscall worker that finished serving a
 * guest call off the tracer thread sends it a signal; its signal stop is what wakes the tracer's waitpid,
 * the only place the tracer sleeps. The tracer swallows the signal, and pause() goes on. */
#define _GNU_SOURCE
#include <errno.h>
#include <grp.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/landlock.h>
#include <linux/mount.h>
#include <linux/seccomp.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* The kernel's struct sigaction: glibc's signal() refuses 32 and 33, which it reserves for itself. */
struct ksigaction { void (*handler)(int); unsigned long flags; void (*restorer)(void); unsigned long mask; };

static int hexval(char c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Installs a seccomp filter given as hex bytes of a struct sock_filter array; returns what seccomp(2) returns. */
static int install_filter(const char *hex, unsigned flags) {
    size_t n = strlen(hex);
    if (n == 0 || n % 16 != 0) { errno = EINVAL; return -1; }
    unsigned char *bytes = malloc(n / 2);
    if (!bytes) return -1;
    for (size_t i = 0; i < n / 2; i++) {
        int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) { errno = EINVAL; return -1; }
        bytes[i] = (unsigned char)(hi << 4 | lo);
    }
    struct sock_fprog prog = { (unsigned short)(n / 16), (struct sock_filter *)bytes };
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return -1;
    int r = (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
    free(bytes);
    return r;
}

/* ---- The wall: the host kernel's confinement of the guest, carried out from the supervisor's plan. ---- */

#ifndef LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET /* Linux 6.12 (Landlock ABI 6); this system's headers may predate it */
#define LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET (1ULL << 0)
#define LANDLOCK_SCOPE_SIGNAL (1ULL << 1)
#endif
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14)
#endif
struct ruleset_attr { unsigned long long handled_access_fs, handled_access_net, scoped; };

static int wall_failed(const char *what, const char *arg) {
    fprintf(stderr, "umlmicro: cannot confine the guest (%s%s%s): %s\n", what, *arg ? " " : "", arg, strerror(errno));
    return -1;
}

/* mkdir -p of PATH's parents (and PATH itself when DIR), as the caller's mount namespace has them. */
static int make_path(const char *path, int dir) {
    char buf[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof buf) { errno = ENAMETOOLONG; return -1; }
    memcpy(buf, path, n + 1);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(buf, 0755) != 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    if (dir) return mkdir(buf, 0755) != 0 && errno != EEXIST ? -1 : 0;
    struct stat st;
    if (lstat(buf, &st) == 0) return 0; /* there already (a device is never opened here) */
    int fd = open(buf, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return errno == EEXIST || errno == EISDIR ? 0 : -1;
    close(fd);
    return 0;
}

static int set_mount_attr(const char *path, unsigned long long set, unsigned long long clr) {
    struct mount_attr attr = { .attr_set = set, .attr_clr = clr };
    return (int)syscall(SYS_mount_setattr, AT_FDCWD, path, AT_RECURSIVE, &attr, sizeof attr);
}

static int loopback_up(void) {
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) return -1;
    struct ifreq ifr = { 0 };
    strcpy(ifr.ifr_name, "lo");
    int r = ioctl(s, SIOCGIFFLAGS, &ifr);
    if (r == 0) {
        ifr.ifr_flags |= IFF_UP;
        r = ioctl(s, SIOCSIFFLAGS, &ifr);
    }
    close(s);
    return r;
}

/* Keeps only the capabilities in KEEP (a bit mask) in the bounding set, and none inheritable or ambient: what the
 * guest's root may hold after execve, in its own user namespace only. */
/* The guest's user (--user, an image's User): "UID:GID" and the supplementary groups "G1,G2,..." (may be empty).
 * The last step of the plan: a root launcher that becomes another user keeps no capability, as natively. */
static int become_user(const char *ids, const char *groups) {
    char *end;
    uid_t uid = (uid_t)strtoul(ids, &end, 10);
    if (*end != ':') { errno = EINVAL; return -1; }
    gid_t gid = (gid_t)strtoul(end + 1, NULL, 10);
    gid_t list[256]; /* GuestUser passes at most this many */
    size_t n = 0;
    for (const char *g = groups; *g && n < sizeof list / sizeof list[0]; ) {
        list[n++] = (gid_t)strtoul(g, &end, 10);
        g = *end == ',' ? end + 1 : end;
    }
    if (setgroups(n, list) != 0) return -1;
    if (setresgid(gid, gid, gid) != 0) return -1;
    return setresuid(uid, uid, uid);
}

static int cut_capabilities(unsigned long long keep) {
    for (int cap = 0; cap <= 63; cap++) {
        if (keep >> cap & 1) continue;
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL) return -1; /* EINVAL: beyond cap_last_cap */
    }
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL) return -1;
    struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct data[2];
    if (syscall(SYS_capget, &hdr, data) != 0) return -1;
    data[0].inheritable = data[1].inheritable = 0;
    return (int)syscall(SYS_capset, &hdr, data);
}

static int ruleset = -1;     /* the Landlock ruleset being built, -1 when the host has no Landlock */
static int landlock_abi;
static unsigned long long landlock_writes; /* the write rights the ruleset handles */

static int landlock_begin(void) {
    landlock_abi = (int)syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
    if (landlock_abi < 1) return 0; /* no Landlock here: the other layers stand alone */
    landlock_writes = LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_REMOVE_DIR | LANDLOCK_ACCESS_FS_REMOVE_FILE |
        LANDLOCK_ACCESS_FS_MAKE_CHAR | LANDLOCK_ACCESS_FS_MAKE_DIR | LANDLOCK_ACCESS_FS_MAKE_REG |
        LANDLOCK_ACCESS_FS_MAKE_SOCK | LANDLOCK_ACCESS_FS_MAKE_FIFO | LANDLOCK_ACCESS_FS_MAKE_BLOCK |
        LANDLOCK_ACCESS_FS_MAKE_SYM;
    if (landlock_abi >= 2) landlock_writes |= LANDLOCK_ACCESS_FS_REFER;
    if (landlock_abi >= 3) landlock_writes |= LANDLOCK_ACCESS_FS_TRUNCATE;
    struct ruleset_attr attr = { landlock_writes, 0, 0 };
    size_t size = 8; /* ABI 1-3: handled_access_fs only */
    if (landlock_abi >= 6) {
        attr.scoped = LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET | LANDLOCK_SCOPE_SIGNAL;
        size = sizeof attr;
    }
    ruleset = (int)syscall(SYS_landlock_create_ruleset, &attr, size, 0);
    return ruleset < 0 ? -1 : 0;
}

/* Allows writing beneath PATH (a directory), or to PATH itself (a device file: write and truncate only). */
static int landlock_allow(const char *path) {
    if (ruleset < 0) return 0;
    int fd = open(path, O_PATH | O_CLOEXEC);
    if (fd < 0) return errno == ENOENT ? 0 : -1; /* a device the host does not have */
    struct stat st;
    if (fstat(fd, &st) != 0) { close(fd); return -1; }
    struct landlock_path_beneath_attr rule = { landlock_writes, fd };
    if (!S_ISDIR(st.st_mode)) rule.allowed_access &= LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_TRUNCATE;
    int r = (int)syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &rule, 0);
    close(fd);
    return r;
}

static int landlock_enforce(void) {
    if (ruleset < 0) return 0;
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return -1;
    int r = (int)syscall(SYS_landlock_restrict_self, ruleset, 0);
    close(ruleset);
    ruleset = -1;
    return r;
}

/* One step of the plan: OP, and ARG (two arguments are separated by a tab). */
static int wall_step(const char *op, char *arg) {
    char *arg2 = strchr(arg, '\t');
    if (arg2) *arg2++ = 0;
    int r = 0;
    if (strcmp(op, "unshare") == 0) {
        r = unshare((int)strtoul(arg, NULL, 16));
        if (r == 0) r = kill(getpid(), SIGSTOP); /* the supervisor writes uid_map and gid_map, then continues us */
    } else if (strcmp(op, "hostname") == 0) r = sethostname(arg, strlen(arg));
    else if (strcmp(op, "slave") == 0) r = mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL);
    else if (strcmp(op, "newroot") == 0) {
        /* A private tmpfs becomes the root; the host's old one stays at /.oldroot until dropped. */
        char old[4096];
        snprintf(old, sizeof old, "%s/.oldroot", arg);
        r = mount("tmpfs", arg, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755");
        if (r == 0) r = mkdir(old, 0700);
        if (r == 0) r = (int)syscall(SYS_pivot_root, arg, old);
        if (r == 0) r = chdir("/");
    } else if (strcmp(op, "bind") == 0 && arg2) {
        struct stat st;
        r = stat(arg, &st);
        if (r == 0) r = make_path(arg2, S_ISDIR(st.st_mode));
        if (r == 0) r = mount(arg, arg2, NULL, MS_BIND | MS_REC, NULL);
    } else if (strcmp(op, "symlink") == 0 && arg2) {
        r = make_path(arg2, 0) == 0 ? unlink(arg2) : -1;
        if (r == 0) r = symlink(arg, arg2);
    } else if (strcmp(op, "dropold") == 0) {
        r = umount2("/.oldroot", MNT_DETACH);
        if (r == 0) r = rmdir("/.oldroot");
    } else if (strcmp(op, "seal") == 0) r = set_mount_attr("/", MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, 0);
    else if (strcmp(op, "writable") == 0) r = set_mount_attr(arg, 0, MOUNT_ATTR_RDONLY);
    else if (strcmp(op, "device") == 0) r = set_mount_attr(arg, 0, MOUNT_ATTR_NODEV);
    else if (strcmp(op, "loopback") == 0) r = loopback_up();
    else if (strcmp(op, "chdir") == 0) r = chdir(arg) == 0 ? 0 : chdir("/");
    else if (strcmp(op, "user") == 0) r = become_user(arg, arg2 ? arg2 : "");
    else if (strcmp(op, "capabilities") == 0) r = cut_capabilities(strtoull(arg, NULL, 16));
    else if (strcmp(op, "landlock") == 0) r = landlock_begin();
    else if (strcmp(op, "allow-write") == 0) r = landlock_allow(arg);
    else if (strcmp(op, "enforce") == 0) r = landlock_enforce();
    else if (strcmp(op, "deny") == 0)
        /* The listener is never used: it is there so that a guest cannot install one of its own (EBUSY), whose
         * SECCOMP_RET_USER_NOTIF would outrank the tracer's RET_TRACE. The supervisor keeps a copy of it. */
        r = install_filter(arg, SECCOMP_FILTER_FLAG_NEW_LISTENER) < 0 ? -1 : 0;
    else if (strcmp(op, "sysvipc") == 0)
        /* Opened in the guest's IPC namespace, which a reader of it keeps: the supervisor takes a copy. */
        r = open("/proc/sysvipc/shm", O_RDONLY | O_CLOEXEC) < 0 ? -1 : 0;
    else { errno = EINVAL; r = -1; }
    return r == 0 ? 0 : wall_failed(op, arg);
}

static int build_wall(const char *plan_path) {
    FILE *f = fopen(plan_path, "re");
    if (!f) return wall_failed("plan", plan_path);
    static char line[1 << 20];
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        if (!line[0]) continue;
        char *arg = strchr(line, ' ');
        if (arg) *arg++ = 0; else arg = line + strlen(line);
        if (wall_step(line, arg) != 0) { fclose(f); return -1; }
    }
    fclose(f);
    return 0;
}

/* The init of the guest's pid namespace: idle until killed. The supervisor (our parent, by CLONE_PARENT) kills it when
 * the guest ends, or the kernel does when the supervisor's tracer thread ends first; either way every task left in the
 * namespace dies with it, traced or not. Orphans the guest's pid 1 does not take are reaped at once. */
static _Noreturn int pid_namespace_init(void *unused) {
    (void)unused;
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    syscall(SYS_close_range, 0, ~0U, 0); /* holds nothing open: no pipe of the user's stays open through it */
    struct ksigaction sa = { SIG_IGN, 0, 0, 0 };
    syscall(SYS_rt_sigaction, SIGCHLD, &sa, NULL, sizeof sa.mask);
    for (;;) pause();
}

/* A child of our parent (CLONE_PARENT), so that the supervisor's tracer thread waits for it and is its parent. */
static pid_t spawn_sibling(int (*fn)(void *)) {
    static char stack[64 * 1024] __attribute__((aligned(16)));
    if (fn) return clone(fn, stack + sizeof stack, CLONE_PARENT | SIGCHLD, NULL);
    return (pid_t)syscall(SYS_clone, CLONE_PARENT | SIGCHLD, 0, NULL, NULL, 0);
}

/* The wall unshared the pid namespace for our children: the first one is its init (pid 1 there), stopped until the
 * supervisor has told it from the second, which goes on to become guest pid 1. Returns 0 in that second child;
 * the launcher itself leaves here, its work done. */
static int start_pid_namespace(void) {
    pid_t init = spawn_sibling(pid_namespace_init);
    if (init < 0) return wall_failed("pid namespace", "init");
    if (kill(init, SIGSTOP) != 0) { kill(init, SIGKILL); return wall_failed("pid namespace", "init"); }
    pid_t first = spawn_sibling(NULL);
    if (first == 0) return 0;
    if (first < 0) { kill(init, SIGKILL); return wall_failed("pid namespace", "guest"); }
    _exit(0);
}

/* The ticker's next period is the base doubled this many times: the tracer resumes each stop with SIGRTMIN + shift,
 * whose handler sets it; SIGRTMIN sent while it sleeps cuts the sleep short (no SA_RESTART): a tick at once. */
static volatile sig_atomic_t tick_shift;

static void tick_signal(int sig) { tick_shift = sig - SIGRTMIN; }

static int tick(long us) {
    if (us <= 0) return 2;
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0); /* never outlives the supervisor's tracer thread */
    struct sigaction sa = { 0 };
    sa.sa_handler = tick_signal;
    for (int sig = SIGRTMIN; sig <= SIGRTMIN + 8 && sig <= SIGRTMAX; sig++) sigaction(sig, &sa, NULL);
    for (;;) {
        kill(getpid(), SIGSTOP);
        long long period = (long long)us << tick_shift;
        struct timespec t = { period / 1000000, (period % 1000000) * 1000 };
        nanosleep(&t, NULL);
    }
}

static _Noreturn void doorbell(void) {
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0); /* never outlives the supervisor's tracer thread */
    kill(getpid(), SIGSTOP);                   /* for the tracer to seize it */
    for (;;) pause();
}

/* One side of NOFILE: "-" keeps *value. */
static int limit_value(const char *text, size_t len, rlim_t *value) {
    if (len == 1 && text[0] == '-') return 0;
    char *end;
    errno = 0;
    unsigned long long n = strtoull(text, &end, 10);
    if (len == 0 || errno != 0 || (size_t)(end - text) != len) return -1;
    *value = (rlim_t)n;
    return 0;
}

static int set_file_limit(const char *spec) {
    const char *colon = strchr(spec, ':');
    struct rlimit lim;
    if (!colon || getrlimit(RLIMIT_NOFILE, &lim) != 0) return -1;
    if (limit_value(spec, (size_t)(colon - spec), &lim.rlim_cur) != 0 || limit_value(colon + 1, strlen(colon + 1), &lim.rlim_max) != 0)
        return -1;
    if (lim.rlim_cur > lim.rlim_max) lim.rlim_cur = lim.rlim_max;
    return setrlimit(RLIMIT_NOFILE, &lim);
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "--tick") == 0) return tick(atol(argv[2]));
    if (argc == 2 && strcmp(argv[1], "--doorbell") == 0) doorbell();
    if (argc < 8 || (strcmp(argv[3], "fixed") != 0 && strcmp(argv[3], "random") != 0)) {
        fputs("umlmicro-launch: usage: umlmicro-launch SIGIGN FILTER fixed|random SOFT:HARD WALL PATH ARGV0 [ARGS...]\n", stderr);
        return 2;
    }
    int foreground = isatty(STDIN_FILENO) && tcgetpgrp(STDIN_FILENO) == getpgrp();
    unsigned long long ignored = strtoull(argv[1], NULL, 16);
    for (int sig = 1; sig < NSIG; sig++) {
        if (sig == SIGKILL || sig == SIGSTOP) continue;
        struct ksigaction sa = { (ignored >> (sig - 1)) & 1 ? SIG_IGN : SIG_DFL, 0, 0, 0 };
        syscall(SYS_rt_sigaction, sig, &sa, NULL, sizeof sa.mask);
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);

    if (set_file_limit(argv[4]) != 0) {
        fprintf(stderr, "umlmicro: cannot set the open-file limit to %s: %s\n", argv[4], strerror(errno));
        return 126;
    }

    if (strcmp(argv[5], "-") != 0 && (build_wall(argv[5]) != 0 || start_pid_namespace() != 0)) return 125;

    /* From here on this is the process that becomes guest pid 1. Its own process group, so kill(0, sig) in the guest
     * reaches the guest only, never the supervisor or the user's shell. On a terminal where the supervisor was in the
     * foreground, the guest takes it. */
    if (setpgid(0, 0) != 0) return 126;
    if (foreground) {
        sigset_t ttou, old;
        sigemptyset(&ttou);
        sigaddset(&ttou, SIGTTOU);
        sigprocmask(SIG_BLOCK, &ttou, &old);
        tcsetpgrp(STDIN_FILENO, getpid());
        sigprocmask(SIG_SETMASK, &old, NULL);
    }
    /* Guest pid 1 acts as the init of the guest's pid namespace: orphans are reparented to it, on the host too. */
    if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0) return 126;
    if (kill(getpid(), SIGSTOP) != 0) return 126;
    if (strcmp(argv[2], "-") != 0 && install_filter(argv[2], 0) != 0) {
        fprintf(stderr, "umlmicro: cannot install the seccomp filter: %s\n", strerror(errno));
        return 126;
    }
    if (strcmp(argv[3], "fixed") == 0) {
        int persona = personality(0xffffffff);
        if (persona == -1 || personality((unsigned long)persona | ADDR_NO_RANDOMIZE) == -1) {
            fprintf(stderr, "umlmicro: cannot turn address randomisation off: %s\n", strerror(errno));
            return 126;
        }
    }
    execve(argv[6], argv + 7, environ);
    fprintf(stderr, "umlmicro: %s: %s\n", argv[6], strerror(errno));
    return errno == ENOENT ? 127 : 126;
}
