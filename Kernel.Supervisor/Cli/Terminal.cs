using UmlMicro.Supervisor.Native;

namespace UmlMicro.Supervisor.Cli;

/// <summary>
/// The guest leads its own process group and, on a terminal where the supervisor was in the foreground,
/// takes the foreground (the launcher does that). When the guest ends, the foreground comes back here.
/// </summary>
internal static unsafe class Terminal
{
    public static IDisposable KeepForeground()
    {
        int ours = Interop.getpgrp();
        bool foreground = Tmds.Linux.LibC.isatty(0) == 1 && Interop.tcgetpgrp(0) == ours;
        return new Restore(foreground ? ours : 0);
    }

    private sealed class Restore(int pgrp) : IDisposable
    {
        public void Dispose()
        {
            if (pgrp == 0) return;
            // From a background group tcsetpgrp raises SIGTTOU unless the calling thread blocks it.
            ulong ttou = 1UL << (Interop.SIGTTOU - 1), old;
            Interop.pthread_sigmask(0, &ttou, &old);
            Interop.tcsetpgrp(0, pgrp);
            Interop.pthread_sigmask(2, &old, null);
        }
    }
}
