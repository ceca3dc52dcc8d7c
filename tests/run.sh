#!/usr/bin/env bash
# The test command of the README: the unit, server and integration tests in Release, then the integration suite again in
# the two other trap modes (the same guests must behave the same under tt, sysemu and seccomp), less the
# classes no trap mode touches: the command line, the config file, server start and stop, ModeTests,
# which runs every mode itself, and those of servers' logic (below); then the example Sched server in Python
# (examples/sched-py): the conformance kit against it and the integration classes that exercise Sched with it in place
# of the built-in one; then the contract tests against the servers ./umlmicro publishes, a few integration classes
# against its published supervisor, and the public conformance suite with the Python Sched when ../shared has it.
# Ends with one line "N passed, N failed" over all runs (the kit's counted from its summary); exit status 0 only when
# nothing failed.
set -uo pipefail
cd "$(dirname "$0")/.."
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0

run() { # LABEL CMD...
  echo "== $1"
  shift
  "$@" 2>&1 | tee -a "$log"
  [ "${PIPESTATUS[0]}" = 0 ] || status=1
}

# Build everything first: the contract tests start the server executables, which no test project
# references, so a test run that builds as it goes can start them before they exist.
run "build" dotnet build UmlMicro.sln -c Release -nologo -v q
# The contract tests run once, against the published servers below (what ./umlmicro starts).
run "unit and server tests" dotnet test tests/Servers.Tests -c Release --no-build
run "unit and integration tests (seccomp, the default mode)" dotnet test tests/UmlMicro.Tests -c Release --no-build
mode_matrix="FullyQualifiedName~Integration"
# Also left out there: the classes whose guests exercise a server's logic or the supervisor's caches of it, which sit
# above the trap seam (handlers do not know the mode): the VFS's namespace, permissions, errnos, procfs and kernel files,
# leases, restarts after a fault, a server's mistakes, images, files and devices, MM's limits, --trace's text; and
# BytePathTests and XattrTests, which run each mode themselves; the toolchain's and a foreign root's programs (gcc, make, a Debian tree:
# the longest runs, whose calls the other classes make too) run in seccomp only.
for class in CliTests ConfigFileTests ServerLifecycleTests ModeTests BytePathTests XattrTests \
    VfsNamespaceTests VfsPermissionTests VfsErrnoTests ProcFsTests KernelFileTests LeaseTests FaultTests ChaosTests \
    ServerMistakeTests ConfinementTests ImageTests FileTests DevFsTests LimitTests TraceTests ToolchainTests ForeignRootTests; do
  mode_matrix+="&FullyQualifiedName!~Integration.$class."
done
for mode in tt sysemu; do
  run "integration tests ($mode)" env UMLMICRO_Kernel__Mode=$mode \
    dotnet test tests/UmlMicro.Tests -c Release --no-build --filter "$mode_matrix"
done

# The contract is language-neutral (issue 15): the reference Sched server in Python 3 (standard library only) passes the
# kit and runs real guests. The classes whose guests exercise Sched: pids and the tree (fork, exec, wait, orphans,
# subreapers), groups and sessions (job control, signals to groups), the guest's pid namespace, the vCPUs' run policies.
# Under a minute on 2 cores (two while other builds run). Before the publish: the kit builds the contract tests, which
# is a no-op only on this build.
py_sched="python3 $PWD/examples/sched-py/sched.py"
run "conformance kit (examples/sched-py)" tests/server-kit.sh sched "$py_sched"
run "integration tests (Sched: examples/sched-py)" env UMLMICRO_Servers__Sched__Command="$py_sched" \
  dotnet test tests/UmlMicro.Tests -c Release --no-build \
  --filter "FullyQualifiedName~Integration.ProcessTests.|FullyQualifiedName~Integration.SignalTests.|FullyQualifiedName~Integration.PidNamespaceTests.|FullyQualifiedName~Integration.SchedulerTests.|FullyQualifiedName~Integration.ProcFsTests."
# What ./umlmicro runs is not that build but the published one (NativeAOT executables): the contract
# tests run against those servers. Publishing leaves build/Release as ./umlmicro wants it.
rm -f build/Release/.built
run "publish (as ./umlmicro builds)" ./umlmicro --help
run "contract tests (published servers)" dotnet test tests/Contract.Tests -c Release --no-build
# The integration tests start build/Release/umlmicro, after the publish the NativeAOT supervisor: the classes that exercise what
# reflection or trimming would break there (the config's keys, the server links, replay after a server's death, a server's mistakes).
run "integration tests (published kernel)" dotnet test tests/UmlMicro.Tests -c Release --no-build \
  --filter "FullyQualifiedName~Integration.CliTests.|FullyQualifiedName~Integration.ConfigFileTests.|FullyQualifiedName~Integration.ServerLifecycleTests.|FullyQualifiedName~Integration.ChaosTests.|FullyQualifiedName~Integration.FaultTests.|FullyQualifiedName~Integration.ServerMistakeTests."

# And the public conformance suite (../shared/conformance, beside the project, when the machine has it: it is not part of
# this repository) with the Python Sched, as a user would run it: real programs compared with a native run, through
# ./umlmicro once it is published (before, on a fresh clone, its first case would wait for the publish under the
# case's 60 s timeout).
conformance=../shared/conformance/run.sh
if [ -x "$conformance" ]; then
  run "conformance suite (Sched: examples/sched-py)" env UMLMICRO_Servers__Sched__Command="$py_sched" \
    "$conformance" -e UMLMICRO_Servers__Sched__Command ./umlmicro run --
else
  echo "== conformance suite (Sched: examples/sched-py): not run, no $conformance on this machine"
fi

# dotnet test's summary lines read "Passed!  - Failed:     0, Passed:   157, Skipped: ..."; the kit's
# "  wire (framing, malformed input, required fields):  39 passed,   0 failed" (and "  semantics ..."); the
# conformance suite's last line "31 passed, 0 failed".
awk '/(Passed|Failed)! +- +Failed:/ { gsub(",", ""); f += $4; p += $6 }
     /^  (wire|semantics) \(.*\): +[0-9]+ passed, +[0-9]+ failed$/ { s = $0; sub(/.*\): +/, "", s); split(s, n, /[^0-9]+/); p += n[1]; f += n[2] }
     /^[0-9]+ passed, [0-9]+ failed$/ { p += $1; f += $3 }
     END { printf "%d passed, %d failed\n", p, f }' "$log"
exit $status
