using System.Runtime.InteropServices;
using UmlMicro.Contracts.Servers;
using UmlMicro.Contracts.Syscalls;
using UmlMicro.Supervisor;
using UmlMicro.Supervisor.Cli;
using UmlMicro.Supervisor.Guest;
using UmlMicro.Supervisor.Images;
using UmlMicro.Supervisor.Native;
using UmlMicro.Supervisor.Observability;
using UmlMicro.Supervisor.Scheduling;
using UmlMicro.Supervisor.Servers;
using UmlMicro.Supervisor.Tracing;

Console.SetError(new PathBytesWriter(Console.OpenStandardError()));
try
{
    return new CommandLine(Supervisor.Run).Invoke(Interop.RawArgs(args));
}
catch (ServerCrashLoop e)
{
    Console.Error.WriteLine($"umlmicro: {e.Message}; guest ended");
    return Supervisor.CrashLoopStatus;
}
catch (Exception e) when (UserFacing(e) is { } problem)
{
    Console.Error.WriteLine($"umlmicro: {problem.Message}");
    return 2;
}

// A problem the user must fix (usage, configuration, a server that does not start or answer, or answers its
// configuration wrongly, before the guest runs): one line, exit 2.
static Exception? UserFacing(Exception e) => e switch
{
    UsageError or ConfigError or ServerFailure or ServerMistake => e,
    AggregateException a => a.InnerExceptions.Select(UserFacing).FirstOrDefault(x => x is not null),
    _ => null,
};

namespace UmlMicro.Supervisor
{
    /// <summary>Starts the kernel's servers, runs the guest on the tracer thread, and tears everything down.</summary>
    internal static class Supervisor
    {
        /// <summary>Exit status when the kernel itself failed while a guest ran.</summary>
        public const int KernelFailureStatus = 125;

        /// <summary>Exit status when the servers kept dying beyond the restart budget (Servers:RestartLimit).</summary>
        public const int CrashLoopStatus = 123;

        /// <summary>Exit status when --timeout ended the guest, as coreutils' timeout.</summary>
        public const int TimeoutStatus = 124;

        public static int Run(RunOptions run)
        {
            string binDir = AppContext.BaseDirectory;
            string configFile = run.ConfigFile ?? Path.Combine(binDir, "configs", "default.json");
            var config = KernelConfigLoader.Load(configFile, run.Settings);
            TrapMode mode;
            try
            {
                mode = TrapPath.Parse(config.Kernel.Mode);
            }
            catch (ArgumentException e)
            {
                throw new ConfigError($"config {configFile}: Kernel:Mode: {e.Message}");
            }
            config.Validate(configFile);
            var image = config.Guest.Image.Length > 0 ? ImageStore.Open(config.Guest.Image, ImageStore.DefaultCacheDir(), ImageStore.TerminalProgress()) : null;
            if (image is not null) config.Vfs.Root = image.Root;
            string hostCwd = Interop.HostCwd();
            var start = GuestStart.Resolve(run, config.Guest, image?.Config, GuestNamespace.MountsFor(config.Vfs, hostCwd),
                GuestNamespace.DefaultCwd(config.Vfs, hostCwd), TracerThread.InheritedEnvironment());
            int cpus = config.Kernel.Cpus > 0 ? config.Kernel.Cpus : Environment.ProcessorCount;

            var stats = new KernelStats { WantsResident = config.Kernel.Stats };
            using var trace = config.Kernel.Trace.Length > 0 ? OpenTrace(config.Kernel.Trace) : null;
            var budget = new RestartBudget(config.Servers.RestartLimit, TimeSpan.FromSeconds(config.Servers.RestartWindowSeconds));
            budget.Restarted += r => trace?.WriteRestart(r);
            var ending = new RunEnding();
            var quantum = TimeSpan.FromMilliseconds(config.Sched.QuantumMs);
            ServerLaunch Launch(ServerCommand command, string contract, int version) => new(command, binDir, contract, version,
                TimeSpan.FromMilliseconds(config.Servers.HandshakeTimeoutMs), TimeSpan.FromMilliseconds(config.Servers.CallTimeoutMs), ending);
            using var links = new StoppedTogether();
            var vfs = links.Add(ServerLink<IVfsServer>.Start(Server.Vfs, "vfs", Launch(config.Servers.Vfs!, Contract.VfsName, Contract.VfsVersion), stats, budget));
            var mm = links.Add(ServerLink<IMmServer>.Start(Server.Mm, "mm", Launch(config.Servers.Mm!, Contract.MmName, Contract.MmVersion), stats, budget));
            var sched = links.Add(ServerLink<ISchedServer>.Start(Server.Sched, "sched", Launch(config.Servers.Sched!, Contract.SchedName, Contract.SchedVersion), stats, budget));
            // The servers start up (connect, handshake, be configured) side by side, and while the guest's namespace is made.
            var vfsUp = vfs.HandshakeAsync();
            var mmUp = mm.HandshakeAsync();
            var schedUp = sched.HandshakeAsync();
            var identity = Identity(config.Kernel);
            using var ns = GuestNamespace.Create(config.Vfs, hostCwd, start.WorkDir);
            long memoryLimit = config.Mm.MemoryLimitBytes;
            using var names = NameCache.Create();
            WaitAll(
                Then(vfsUp, () => vfs.Call(v => v.ConfigureAsync(new VfsConfig(ns.Mounts, ns.InitialCwd, ns.StateDir, ns.MemoryDir, ns.UpperDir,
                    identity.Release, identity.Nodename, cpus, memoryLimit, names?.EpochPath ?? "", ns.OnlyUid, ns.OnlyGid)))),
                Then(mmUp, () => mm.Call(m => m.ConfigureAsync(new MmConfig(memoryLimit, config.Mm.DeterministicLayout, (ulong)Random.Shared.NextInt64())))),
                Then(schedUp, () => ConfigureSched(sched, new SchedConfig(cpus, config.Sched.Policy, (long)quantum.TotalNanoseconds), configFile)));

            var mapCheck = config.Mm.CheckMaps ? new MapCheck() : null;
            using var policy = new PolicyLink(config.Sched.Policy, tick => sched.Call(s => s.VcpuTickAsync(tick)), () => sched.Restarting, ending.Fail);
            var vcpus = new VcpuScheduler(cpus, quantum, policy);
            var kernel = new Kernel(vfs, mm, sched, identity, cpus, stats, trace, memoryLimit, mapCheck, vcpus, config.Kernel.MaxProcs, config.Kernel.MaxFiles, names, ns.MemoryDir);
            var wall = HostWall.Plan(ns, config.Kernel.Net == "none", identity.Nodename, SeccompFilter.ToHex(SeccompFilter.BuildDenyLayer()), start.User);
            var tracer = new TracerThread(kernel, mode, observeAll: trace is not null || config.Kernel.Stats, Path.Combine(binDir, "umlmicro-launch"), start.Program,
                start.Argv, start.Environment, config.Mm.DeterministicLayout, config.Kernel.MaxFiles, config.Kernel.TimeoutSpan, wall.WriteTo(ns.StateDir), ending);
            var forwarding = ForwardSignals(tracer, ending).ToList();
            // The runtime's signal handling is set up by now (the registrations need it): its SIGCHLD part is turned
            // off before the first guest stop, which would otherwise run it.
            Interop.DefaultSigChld();
            using (Terminal.KeepForeground())
            {
                tracer.Run();
                forwarding.ForEach(r => r.Dispose());
            }
            // A mistake found off the tracer is what ended the run; the tracer's own failure is then only its echo.
            var failure = ending.Failure ?? tracer.Failure;

            if (config.Kernel.Stats)
            {
                Console.Error.Write(stats.Render());
                Console.Error.Write(stats.RenderOffTracer());
                if (names is not null) Console.Error.WriteLine($"path lookups answered from a VFS lease: {names.Used}");
                Console.Error.WriteLine($"vcpus {vcpus.Cpus}, policy {policy.Name}, quantum {vcpus.Quantum.TotalMilliseconds:0} ms: " +
                    $"{vcpus.Ticks} ticks, {vcpus.Preemptions} preemptions ({policy.Decisions} decisions by sched, {policy.Held} ticks held by the kernel); host CPUs {(kernel.HostCpus.Spread ? "spread" : "gathered")} at the end, {kernel.HostCpus.Changes} changes");
                // Asking MM may restart it: the restarts are listed after.
                if (failure is null) Console.Error.Write(KernelStats.RenderMemory(mm.Call(m => m.UsageAsync()), stats.ResidentByProcess));
                Console.Error.Write(KernelStats.RenderRestarts(budget.Restarts));
            }
            if (mapCheck is not null) Console.Error.Write(mapCheck.Summary);
            switch (failure)
            {
                case ServerCrashLoop crashLoop:
                    Console.Error.WriteLine($"umlmicro: {crashLoop.Message}; guest ended");
                    return CrashLoopStatus;
                case RunInterrupted when ending.Signal != 0 && !tracer.TimedOut:
                    // The signal's own status, as the guest's pid 1 killed by it would have given.
                    Console.Error.WriteLine($"umlmicro: {failure.Message}; guest ended");
                    return 128 + ending.Signal;
                case RunInterrupted when tracer.TimedOut:
                    break;
                case not null:
                    Console.Error.WriteLine($"umlmicro: kernel failure, guest ended: {failure.Message}");
                    return KernelFailureStatus;
            }
            if (tracer.TimedOut)
            {
                Console.Error.WriteLine($"umlmicro: guest ran out of time (--timeout {config.Kernel.Timeout.Trim()})");
                return TimeoutStatus;
            }
            int status = tracer.InitStatus ?? 0;
            return Interop.WIFSIGNALED(status) ? 128 + Interop.WTERMSIG(status) : Interop.WEXITSTATUS(status);
        }

        /// <summary>
        /// The server links, stopped side by side when the guest has ended: each waits for its server to have
        /// handled everything and exited, and three such waits in a row were a visible part of a short guest's run.
        /// </summary>
        private sealed class StoppedTogether : IDisposable
        {
            private readonly List<IDisposable> _links = [];

            public T Add<T>(T link) where T : IDisposable
            {
                _links.Add(link);
                return link;
            }

            public void Dispose()
            {
                var others = _links.Skip(1).Select(l => Task.Factory.StartNew(l.Dispose, CancellationToken.None,
                    TaskCreationOptions.LongRunning, TaskScheduler.Default)).ToList(); // each waits: not on a pool thread
                Exception? first = null;
                try
                {
                    _links.FirstOrDefault()?.Dispose();
                }
                catch (Exception e)
                {
                    first = e;
                }
                foreach (var t in others)
                {
                    try
                    {
                        t.GetAwaiter().GetResult();
                    }
                    catch (Exception e)
                    {
                        first ??= e;
                    }
                }
                if (first is not null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(first);
            }
        }

        private static TraceWriter OpenTrace(string path)
        {
            try
            {
                return new TraceWriter(path);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new UsageError($"--trace {path}: {e.Message}");
            }
        }

        /// <summary>After a server's handshake, <paramref name="configure"/>; a failed handshake is the server's failure.</summary>
        /// <summary>Sched refusing its configuration is the user's config (a policy it does not know), not a kernel failure.</summary>
        private static void ConfigureSched(ServerLink<ISchedServer> sched, SchedConfig config, string configFile)
        {
            try
            {
                sched.Call(s => s.ConfigureAsync(config));
            }
            catch (ServerMistake e) when (e.ServerSaid is { } said && !e.MethodNotFound)
            {
                throw new ConfigError($"config {configFile}: Sched:Policy '{config.Policy}' (QuantumMs {config.QuantumNs / 1_000_000}): " +
                    $"the sched server refused it: {said}");
            }
        }

        private static Task Then(Task handshake, Action configure) => handshake.ContinueWith(x =>
        {
            if (x.Exception?.InnerException is { } e) throw e is ServerFailure ? e : new ServerFailure(e.Message);
            configure();
        }, CancellationToken.None, TaskContinuationOptions.LongRunning, TaskScheduler.Default); // it waits for an answer: not on a pool thread

        /// <summary>Waits for every task; then the first failure is thrown as itself, as a call on this thread would have.</summary>
        private static void WaitAll(params Task[] tasks)
        {
            try
            {
                Task.WaitAll(tasks);
            }
            catch (AggregateException)
            {
                var failures = tasks.Where(t => t.IsFaulted).Select(t => t.Exception!.InnerException!).ToList();
                System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(failures.FirstOrDefault(e => e is ServerFailure) ?? failures[0]);
            }
        }

        /// <summary>
        /// SIGINT, SIGTERM, SIGHUP and SIGQUIT sent to the supervisor go to guest pid 1 instead. (A terminal's ^C
        /// reaches only the guest: it has its own process group, which holds the terminal's foreground.) Acting on it
        /// takes the tracer: one that waits for a server gives the wait up soon after (<see cref="RunEnding"/>).
        /// </summary>
        private static IEnumerable<PosixSignalRegistration> ForwardSignals(TracerThread tracer, RunEnding ending)
        {
            (PosixSignal posix, int number, string name)[] signals =
                [(PosixSignal.SIGINT, 2, "SIGINT"), (PosixSignal.SIGTERM, 15, "SIGTERM"), (PosixSignal.SIGHUP, 1, "SIGHUP"), (PosixSignal.SIGQUIT, 3, "SIGQUIT")];
            foreach (var (posix, number, name) in signals)
            {
                yield return PosixSignalRegistration.Create(posix, ctx =>
                {
                    // Before the guest runs, the signal does to the supervisor what it would have done.
                    if (tracer.InitHostPid <= 0) return;
                    ctx.Cancel = true;
                    Interop.kill(tracer.InitHostPid, number);
                    ending.Signalled(number, name);
                });
            }
        }

        private static KernelIdentity Identity(KernelSection k)
        {
            string hostRelease = File.ReadAllText("/proc/sys/kernel/osrelease").Trim();
            string version = new string(hostRelease.TakeWhile(ch => char.IsDigit(ch) || ch == '.').ToArray());
            return new KernelIdentity(
                Sysname: "Linux",
                Nodename: k.Hostname.Length > 0 ? k.Hostname : Environment.MachineName,
                Release: k.Release.Length > 0 ? k.Release : $"{version}-umlmicro",
                // The host's, as its /proc/sys/kernel/version says it (the guest reads that file from the host): the two agree.
                Version: File.ReadAllText("/proc/sys/kernel/version").Trim(),
                Machine: "x86_64",
                Domainname: "(none)");
        }
    }
}
