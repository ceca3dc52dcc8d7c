#!/usr/bin/env bash
# Chaos test of the kernel's fault isolation (issue 7, item 3): real workloads run under ./umlmicro while
# a monitor kills a random server (Servers.Vfs, Servers.Mm, Servers.Sched) with SIGKILL at random,
# seeded moments; every run must still produce exactly what it produces without faults (stdout, the
# guest's stderr, exit status, the files it leaves), and nothing of a run may be left afterwards.
# A last case checks the restart budget: a server killed more often than Servers:RestartLimit allows
# must end the guest with exit status 123, one line on stderr, and nothing left running.
#
#   tests/chaos/run.sh [--faults N] [--seed S] [--workload NAME[,NAME...]] [--mode tt|sysemu|seccomp] [--keep]
#
# Workloads: files, namespace, make, python, crash-loop (default: all of them). See README.md,
# "Chaos testing", for what the report means. Exit status: 0 when every fault was survived, nothing
# was lost and nothing was left; 1 when not; 2 for a usage error or a baseline that cannot be trusted.
set -euo pipefail

repo=$(cd -- "$(dirname -- "$(readlink -f -- "${BASH_SOURCE[0]}")")/../.." && pwd)

usage() { # [STATUS]: 2 (a usage error, on stderr) unless told otherwise
  if [ "${1:-2}" = 0 ]; then
    sed -n '9,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
  else
    sed -n '9,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  fi
  exit "${1:-2}"
}

faults=100
seed=$(( EPOCHSECONDS % 100000 ))
workloads=all
mode=${UMLMICRO_Kernel__Mode:-seccomp}
keep=false
while [ $# -gt 0 ]; do
  case $1 in
    --faults) [ $# -ge 2 ] || usage; faults=$2; shift 2 ;;
    --seed) [ $# -ge 2 ] || usage; seed=$2; shift 2 ;;
    --workload) [ $# -ge 2 ] || usage; workloads=$2; shift 2 ;;
    --mode) [ $# -ge 2 ] || usage; mode=$2; shift 2 ;;
    --keep) keep=true; shift ;;
    -h|--help) usage 0 ;;
    *) echo "run.sh: unknown argument '$1'" >&2; usage ;;
  esac
done
[[ $faults =~ ^[0-9]+$ ]] || { echo "run.sh: --faults wants a number, not '$faults'" >&2; exit 2; }
[[ $seed =~ ^[0-9]+$ ]] || { echo "run.sh: --seed wants a number, not '$seed'" >&2; exit 2; }
[[ $mode =~ ^(tt|sysemu|seccomp)$ ]] || { echo "run.sh: --mode is tt, sysemu or seccomp, not '$mode'" >&2; exit 2; }

all_workloads=(files namespace make python crash-loop)
if [ "$workloads" = all ]; then
  selected=("${all_workloads[@]}")
else
  IFS=, read -r -a selected <<<"$workloads"
  for w in "${selected[@]}"; do
    [[ " ${all_workloads[*]} " == *" $w "* ]] || { echo "run.sh: unknown workload '$w' (${all_workloads[*]})" >&2; exit 2; }
  done
fi
fault_workloads=()
for w in "${selected[@]}"; do [ "$w" = crash-loop ] || fault_workloads+=("$w"); done

# The restart budget of the chaos runs: high, so that only a fault the kernel does not survive can end
# a run. The crash-loop case gets a small one and a window far longer than it runs, so that whether the
# budget is exceeded never depends on how fast the machine is.
chaos_limit=1000 chaos_window=600
loop_limit=2 loop_window=3600
# The status the supervisor ends a guest with when a crash loop exhausts the restart budget.
crash_loop_status=123

python=/usr/bin/python3
[ -x "$python" ] || python=$(command -v python3) || { echo "run.sh: python3 is needed" >&2; exit 2; }
for tool in gcc make pgrep setsid sha256sum; do
  command -v "$tool" >/dev/null || { echo "run.sh: $tool is needed" >&2; exit 2; }
done

RANDOM=$seed
# rand N: a seeded number in [0, N) in REPLY. Never called in a subshell: the sequence must stay one.
rand() { REPLY=$(( ((RANDOM << 15) | RANDOM) % $1 )); }

# Not under a shared /tmp: the guest's stat or readlink of a directory with thousands of entries that
# other programs keep changing costs the VFS seconds per call (it rebuilds its snapshot of the listing),
# which turns a one-second build into minutes without testing anything more. The runs get their own
# TMPDIR (natively too), which is also where the supervisor makes its state directory.
tmp=$(mktemp -d "${CHAOS_TMPDIR:-/var/tmp}/umlmicro-chaos.XXXXXX")
run_tmp=$tmp/tmp
mkdir -p "$run_tmp"
# Every process of a run carries CHAOS_RUN_MARKER in its environment (the supervisor, its servers and
# its guests inherit it), so that whatever a run leaves behind is found even after the supervisor is
# gone, however its parent or session changed. (Not UMLMICRO_*: the kernel would read that as config.)
marker_base="chaos-$$-${EPOCHSECONDS}"
run_no=0
upid=''      # the supervisor of the run in progress
monitor=''   # the background monitor (fault injector and hang guard) of that run

kill_marked() { # REGEX: SIGKILL every live process whose environment has CHAOS_RUN_MARKER matching
  local file pid
  for file in $(grep -lsaz -E -x "CHAOS_RUN_MARKER=$1" /proc/[0-9]*/environ 2>/dev/null || true); do
    pid=${file#/proc/}; pid=${pid%/environ}
    kill -KILL "$pid" 2>/dev/null || true
  done
}

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  [ -n "$monitor" ] && kill "$monitor" 2>/dev/null || true
  [ -n "$upid" ] && kill -KILL "$upid" 2>/dev/null || true
  # The supervisor's death ends its guests (PTRACE_O_EXITKILL) and servers (stdin closes); this also
  # catches anything a broken kernel let escape.
  kill_marked "$marker_base-[0-9]+"
  wait 2>/dev/null || true
  # A supervisor killed here had no chance to remove its memory directory (its state directory is in $tmp).
  [ -n "$upid" ] && remove_state_dirs "$upid"
  if [ "$keep" = true ] || { [ "$status" -ne 0 ] && [ -d "$tmp/failed" ]; }; then
    echo "run.sh: outputs kept in $tmp" >&2
  else
    rm -rf "$tmp"
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------------------------------
# /proc helpers. They set globals instead of printing, so that the monitor's polling forks little.

now() { NOW=$(( ${EPOCHREALTIME/./} / 1000 )); } # milliseconds

# pstat PID: P_COMM, P_STATE, P_PPID, P_SID, P_START (clock ticks after boot) of a process; fails when
# it is gone.
pstat() {
  local line rest fields
  read -r line 2>/dev/null </proc/"$1"/stat || return 1
  P_COMM=${line#*(}; P_COMM=${P_COMM%)*}
  rest=${line##*) }
  read -r -a fields <<<"$rest"
  P_STATE=${fields[0]} P_PPID=${fields[1]} P_SID=${fields[3]} P_START=${fields[19]}
}

# The run is over when its supervisor is gone or a zombie (the main shell reaps it in `wait`).
run_over() { ! pstat "$1" || [ "$P_STATE" = Z ]; }

children() { CHILDREN=$(pgrep -P "$1" || true); }

# guest_running UPID: guest pid 1 is a live child of the supervisor that is neither a server nor the
# launcher (before its exec) or the vCPU ticker (both umlmicro-launch), nor a server being started (a
# child that has not yet exec'd still runs the supervisor's binary, under the name of a .NET thread).
# The check that UPID runs the real binary keeps the wrapper script's own children (sed, find) from
# passing for a guest.
supervisor_exe=$(readlink -f "$repo/build/Release/umlmicro")
guest_running() {
  local c
  [ "$(readlink "/proc/$1/exe" 2>/dev/null)" = "$supervisor_exe" ] || return 1
  children "$1"
  for c in $CHILDREN; do
    pstat "$c" || continue
    [ "$P_STATE" != Z ] || continue
    case $P_COMM in Servers.*|umlmicro-launch) continue ;; esac
    [ "$(readlink "/proc/$c/exe" 2>/dev/null)" != "$supervisor_exe" ] && return 0
  done
  return 1
}

server_comm() { case $1 in vfs) echo Servers.Vfs ;; mm) echo Servers.Mm ;; sched) echo Servers.Sched ;; esac; }

# live_server UPID NAME: SERVER_PID is the server Servers.NAME in use: the oldest live (not zombie) child
# of the supervisor with that name. After a server died once, the supervisor keeps a standby successor
# started beside the one in use; it is always the younger, and killing it would not touch the guest.
live_server() {
  local c comm best='' best_start=''
  comm=$(server_comm "$2")
  children "$1"
  for c in $CHILDREN; do
    if pstat "$c" && [ "$P_COMM" = "$comm" ] && [ "$P_STATE" != Z ] && [ "$P_PPID" = "$1" ] &&
        { [ -z "$best" ] || [ "$P_START" -lt "$best_start" ]; }; then
      best=$c best_start=$P_START
    fi
  done
  [ -n "$best" ] || return 1
  SERVER_PID=$best
}

# kill_server UPID NAME LOG: SIGKILL the live server NAME; logs "fault NAME PID" only when the target was,
# just before, a live server child of this run's supervisor and kill(2) succeeded. (kill(2) also
# "succeeds" on a zombie, which is why the state is checked first. The pid could in theory be reused
# between the check and the kill; within microseconds, on a host that hands out pids in order, it is not.)
kill_server() {
  local pid=$SERVER_PID
  if pstat "$pid" && [ "$P_STATE" != Z ] && [ "$P_PPID" = "$1" ] && [ "$P_COMM" = "$(server_comm "$2")" ] \
      && kill -KILL "$pid" 2>/dev/null; then
    echo "fault $2 $pid" >>"$3"
    return 0
  fi
  echo "missed $2 $pid" >>"$3"
  return 1
}

nap() { sleep 0.02; }

# The supervisor's state directory is made in TMPDIR (the runs' own) and its memory directory in
# /dev/shm (shared), both named umlmicro-PID-...: a directory with the pid of this run's supervisor that
# was there before the run belongs to a dead process of someone else with the same pid, and is left alone.
shm_before=''
note_state_dirs() { shm_before=$(printf '%s\n' /dev/shm/umlmicro-*); }
# state_dirs SID: STATE_DIRS, the state and memory directories made by supervisor SID during its run.
state_dirs() {
  local d
  STATE_DIRS=()
  for d in "$run_tmp"/umlmicro-"$1"-* /dev/shm/umlmicro-"$1"-*; do
    [ -e "$d" ] && ! grep -qxF -- "$d" <<<"$shm_before" && STATE_DIRS+=("$d")
  done
  return 0
}
remove_state_dirs() { state_dirs "$1"; [ ${#STATE_DIRS[@]} -eq 0 ] || rm -rf "${STATE_DIRS[@]}"; }

# hang_guard UPID LOG DEADLINE: a run that outlives DEADLINE (ms since the epoch) is hung: it is killed
# and the run fails. It only keeps a broken kernel from stopping the harness: a run that ends is judged
# by what it produced, never by how long it took.
hang_guard() {
  now
  if [ "$NOW" -gt "$3" ]; then
    echo "hung" >>"$2"
    kill -KILL "$1" 2>/dev/null || true
    return 1
  fi
}

# chaos_monitor UPID PLAN LOG DEADLINE: the fault injector of a chaos run. PLAN has one line per fault,
# "DELAY_MS SERVER SERVER SERVER", DELAY counted from the start of the guest, the servers in a seeded
# order: the first one that is alive at that moment is killed. (A killed server is restarted when the
# supervisor next needs it, which may be much later: the planned one may have no successor yet.) When
# none is alive, the first successor to come is killed. Faults are injected only while the guest runs.
chaos_monitor() {
  local upid=$1 plan=$2 log=$3 deadline=$4 t0 at order name
  until guest_running "$upid"; do
    run_over "$upid" && return 0
    hang_guard "$upid" "$log" "$deadline" || return 0
    nap
  done
  now; t0=$NOW
  echo "guest-start $t0" >>"$log"
  while read -r at order; do
    while now; [ "$NOW" -lt $(( t0 + at )) ]; do
      run_over "$upid" && return 0
      hang_guard "$upid" "$log" "$deadline" || return 0
      nap
    done
    until for name in $order; do live_server "$upid" "$name" && break; done; do
      run_over "$upid" && { echo "unmade: the run ended" >>"$log"; return 0; }
      hang_guard "$upid" "$log" "$deadline" || return 0
      nap
    done
    # A kill after the guest ended would test the shutdown, not the guest: it is not made.
    guest_running "$upid" || { echo "late $name" >>"$log"; break; }
    kill_server "$upid" "$name" "$log" || true
  done <"$plan"
  until run_over "$upid"; do
    hang_guard "$upid" "$log" "$deadline" || return 0
    nap
  done
}

# crash_loop_monitor UPID NAME KILLS WORK LOG DEADLINE: kills server NAME KILLS times. Each next kill
# waits until the guest has gone on (two more lines on its stdout, LOG's folder): every iteration of its
# loop calls the VFS, and the supervisor restarts a dead server at its next call, holding the guest until
# the successor is restored, so progress means the restart is complete. The loop runs until the file
# WORK/stop exists; the monitor makes it when the guest goes on after the last kill (the budget was not
# enforced) or neither goes on nor ends within $progress_wait_ms ms of a kill (no restart, no end), so
# that the run then ends by itself and its status tells what the kernel did.
progress_wait_ms=30000
crash_loop_monitor() {
  local upid=$1 name=$2 kills=$3 work=$4 log=$5 deadline=$6 k mark killed_at
  local out=${log%/*}/stdout
  until guest_running "$upid" && [ "$(wc -l <"$out")" -ge 2 ]; do
    run_over "$upid" && return 0
    hang_guard "$upid" "$log" "$deadline" || return 0
    nap
  done
  for (( k = 1; k <= kills; k++ )); do
    until live_server "$upid" "$name"; do
      run_over "$upid" && return 0
      hang_guard "$upid" "$log" "$deadline" || return 0
      nap
    done
    kill_server "$upid" "$name" "$log" || true
    # Counted once the kill is done: lines the guest printed while the harness was still finding the server
    # are no sign of anything. After the kill at most one more line can come without the server (a cat that
    # already opened f); two mean the guest went on.
    mark=$(wc -l <"$out")
    now; killed_at=$NOW
    until [ "$(wc -l <"$out")" -ge $(( mark + 2 )) ]; do
      run_over "$upid" && return 0
      hang_guard "$upid" "$log" "$deadline" || return 0
      now
      if [ "$NOW" -gt $(( killed_at + progress_wait_ms )) ]; then
        echo "stuck $name $k" >>"$log"
        : >"$work/stop"
        break 2
      fi
      nap
    done
    if [ "$k" -eq "$kills" ]; then
      echo "went-on $name $k" >>"$log"
      : >"$work/stop"
    fi
  done
  until run_over "$upid"; do
    hang_guard "$upid" "$log" "$deadline" || return 0
    nap
  done
}

# ---------------------------------------------------------------------------------------------------
# Workloads. Each has a template directory (copied afresh into the same path before every run, so that
# paths, e.g. in object files, are the same in every run) and a command run in it.

tpl=$tmp/template
work=$tmp/work
mkdir -p "$tpl" "$work" "$tmp/expected"

declare -A command
command[files]='for i in $(seq 200); do echo $i > f; cat f; done'
# Directories made, renamed and removed, a rename and a symlink in each: the VFS's namespace changes.
command[namespace]='for i in $(seq 30); do mkdir d$i; echo $i > d$i/a; mv d$i/a d$i/b; ln -s b d$i/c; cat d$i/c; if [ $((i % 5)) -ne 0 ]; then rm -r d$i; else mv d$i k$i; fi; done; ls'
command[make]='make -j2 -s && ./demo'
command[python]="$python $repo/tests/chaos/threads.py"
# Ends only when the supervisor ends it (the budget) or the monitor creates `stop` (no budget).
command[crash-loop]='i=0; while [ ! -e stop ]; do i=$((i + 1)); echo $i > f; cat f; done'

# The C project of the make workload: a header, seven modules and a main, each module a small loop.
# The program's output is computed here as well (module K sums i % (K + 2) for i in 1..K*1000).
make_project() {
  local dir=$1 k i s
  mkdir -p "$dir"
  {
    echo '#ifndef DEMO_H'
    echo '#define DEMO_H'
    for k in 1 2 3 4 5 6 7; do echo "long module$k(void);"; done
    echo '#endif'
  } >"$dir/demo.h"
  for k in 1 2 3 4 5 6 7; do
    cat >"$dir/m$k.c" <<EOF
#include "demo.h"
long module$k(void) {
    long s = 0;
    for (long i = 1; i <= $k * 1000L; i++) s += i % ($k + 2);
    return s;
}
EOF
  done
  {
    echo '#include <stdio.h>'
    echo '#include "demo.h"'
    echo 'int main(void) {'
    echo '    long total = 0, v;'
    for k in 1 2 3 4 5 6 7; do
      echo "    v = module$k(); total += v; printf(\"module $k: %ld\\n\", v);"
    done
    echo '    printf("total: %ld\n", total);'
    echo '    return 0;'
    echo '}'
  } >"$dir/main.c"
  printf '%s\n' \
    'CFLAGS = -O2 -Wall' \
    'OBJS = main.o m1.o m2.o m3.o m4.o m5.o m6.o m7.o' \
    'demo: $(OBJS)' \
    '	$(CC) -o $@ $(OBJS)' \
    '%.o: %.c demo.h' \
    '	$(CC) $(CFLAGS) -c -o $@ $<' >"$dir/Makefile"
  local total=0
  : >"$tmp/expected/make.program"
  for k in 1 2 3 4 5 6 7; do
    s=0
    for (( i = 1; i <= k * 1000; i++ )); do s=$(( s + i % (k + 2) )); done
    total=$(( total + s ))
    echo "module $k: $s" >>"$tmp/expected/make.program"
  done
  echo "total: $total" >>"$tmp/expected/make.program"
}

prepare() { # WORKLOAD: its template
  mkdir -p "$tpl/$1"
  [ "$1" = make ] && make_project "$tpl/$1"
  return 0
}

reset_work() { rm -rf "${work:?}/$1"; cp -a "$tpl/$1" "$work/$1"; }

# What the workload leaves: every entry's type, mode, path and link target, and every file's content.
# (No times or directory sizes: they differ between correct runs.)
manifest() {
  (cd "$1" && find . -mindepth 1 -printf '%y %m %p %l\n' | LC_ALL=C sort &&
    find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum)
}

# ---------------------------------------------------------------------------------------------------
# Running one workload, natively or under umlmicro. Results go to DIR: stdout, stderr, status, manifest,
# log (the monitor's), supervisor (its pid), ms (wall time).

base_env() { # MARKER: the whole environment of a run, the same natively and under umlmicro
  run_env=(env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME="${HOME:-/root}"
    LC_ALL=C TMPDIR="$run_tmp" CHAOS_RUN_MARKER="$1")
  [ -n "${DOTNET_ROOT:-}" ] && run_env+=(DOTNET_ROOT="$DOTNET_ROOT")
  return 0
}

run_native() { # WORKLOAD DIR
  local w=$1 dir=$2 status=0
  mkdir -p "$dir"
  reset_work "$w"
  run_no=$(( run_no + 1 ))
  base_env "$marker_base-$run_no"
  (cd "$work/$w" && "${run_env[@]}" sh -c "${command[$w]}" >"$dir/stdout" 2>"$dir/stderr" </dev/null) || status=$?
  echo "$status" >"$dir/status"
  manifest "$work/$w" >"$dir/manifest"
}

restart_env=()   # the restart budget, when the build knows it (see the preflight)

# run_guest WORKLOAD DIR MONITOR [ARGS...]: runs the workload under ./umlmicro in a session of its own
# (so that its guests are found by session as well as by marker), with MONITOR (chaos_monitor,
# crash_loop_monitor) in the background. Sets RUN_STATUS and RUN_LEFT (leftover count).
run_guest() {
  local w=$1 dir=$2 mon=$3 start
  shift 3
  mkdir -p "$dir"
  : >"$dir/log"
  reset_work "$w"
  run_no=$(( run_no + 1 ))
  local marker="$marker_base-$run_no"
  base_env "$marker"
  note_state_dirs
  now; start=$NOW
  # setsid does not fork here (a background job of a shell without job control is no group leader), so
  # $! is the supervisor itself (the umlmicro script execs the binary), and its pid is the session's id.
  # (--wait only matters if it ever forked: then the run would at least not seem to end at once.)
  (cd "$work/$w" && exec "${run_env[@]}" "${restart_env[@]}" setsid --wait "$repo/umlmicro" run --mode "$mode" -- \
    sh -c "${command[$w]}" >"$dir/stdout" 2>"$dir/stderr" </dev/null) &
  upid=$!
  echo "$upid" >"$dir/supervisor"
  # A hung run is killed after 5 times the fault-free run's time plus 30 s (see hang_guard): a restart
  # takes a second or so, and a run gets at most 6 faults.
  local deadline=$(( start + 30000 + 5 * ${baseline_ms[$w]:-30000} ))
  "$mon" "$upid" "$@" "$dir/log" "$deadline" &
  monitor=$!
  RUN_STATUS=0
  # (2>/dev/null: no "Killed" job notice from bash for a supervisor the hang guard killed.)
  wait "$upid" 2>/dev/null || RUN_STATUS=$?
  wait "$monitor" || true
  now
  echo $(( NOW - start )) >"$dir/ms"
  # How long the guest ran (from its start, as the monitor saw it, to the end of the run).
  local guest_start
  guest_start=$(awk '$1 == "guest-start" { print $2 }' "$dir/log")
  echo $(( NOW - ${guest_start:-$start} )) >"$dir/guest_ms"
  echo "$RUN_STATUS" >"$dir/status"
  manifest "$work/$w" >"$dir/manifest"
  # The memory directory of a supervisor the hang guard killed is the harness's doing, not a leak.
  if grep -q '^hung' "$dir/log"; then remove_state_dirs "$upid"; fi
  leftovers "$upid" "$marker" "$dir/leftovers"
  RUN_LEFT=$(wc -l <"$dir/leftovers")
  upid='' monitor=''
}

# leftovers UPID MARKER FILE: what the run left: live processes carrying its marker or in its session,
# and the supervisor's state directories. Processes get a few seconds to go (the host reaps what the
# supervisor killed on its way out); what is still alive then is written to FILE and killed.
leftovers() {
  local sid=$1 marker=$2 out=$3 found pid file tries
  for (( tries = 0; tries < 100; tries++ )); do
    found=()
    for file in $(grep -lsaz -F -x "CHAOS_RUN_MARKER=$marker" /proc/[0-9]*/environ 2>/dev/null || true); do
      pid=${file#/proc/}; found+=("${pid%/environ}")
    done
    for pid in $(pgrep -s "$sid" 2>/dev/null || true); do found+=("$pid"); done
    : >"$out"
    for pid in $(printf '%s\n' "${found[@]}" | sort -un); do
      if pstat "$pid" && [ "$P_STATE" != Z ]; then
        echo "process $pid $P_COMM (parent $P_PPID, state $P_STATE, session $P_SID)" >>"$out"
      fi
    done
    [ -s "$out" ] || break
    sleep 0.05
  done
  while read -r _ pid _; do kill -KILL "$pid" 2>/dev/null || true; done <"$out"
  # The supervisor removes its state and memory directories however the guest ended.
  state_dirs "$sid"
  for file in "${STATE_DIRS[@]}"; do
    echo "state directory $file" >>"$out"
    rm -rf "$file"
  done
  return 0
}

# same EXPECTED_DIR DIR: prints what differs ("stdout", "stderr", "files", "status X (expected Y)"),
# nothing when the run is exactly the expected one. The supervisor's own lines on stderr ("umlmicro: ...",
# a restart note, say) are not the guest's output and are left out of the comparison.
same() {
  local e=$1 d=$2 diffs=()
  cmp -s "$e/stdout" "$d/stdout" || diffs+=(stdout)
  cmp -s <(grep -v '^umlmicro: ' "$e/stderr" || true) <(grep -v '^umlmicro: ' "$d/stderr" || true) || diffs+=(stderr)
  cmp -s "$e/manifest" "$d/manifest" || diffs+=(files)
  [ "$(cat "$e/status")" = "$(cat "$d/status")" ] || diffs+=("status $(cat "$d/status") (expected $(cat "$e/status"))")
  [ ${#diffs[@]} -eq 0 ] || echo "${diffs[*]}"
}

first_kernel_line() { grep -m1 '^umlmicro: ' "$1/stderr" || true; }

keep_failed() { # DIR NAME: a failed run's outputs, with diffs against the expected ones, for the user
  local dest=$tmp/failed/$2 e=$3
  mkdir -p "$tmp/failed"
  cp -r "$1" "$dest"
  diff "$e/stdout" "$1/stdout" >"$dest/stdout.diff" || true
  diff "$e/manifest" "$1/manifest" >"$dest/manifest.diff" || true
}

# ---------------------------------------------------------------------------------------------------
# Preflight: the kernel builds (./umlmicro builds it when stale), runs a guest, and knows the restart
# budget. A kernel without the reincarnation service rejects the budget's keys as unknown (exit 2);
# then the runs go without them, and its faults will show as not survived.

echo "chaos: seed $seed, mode $mode, faults $faults, workloads ${selected[*]}"
pre=$tmp/preflight
mkdir -p "$pre"
pre_status=0
(cd "$tmp" && UMLMICRO_Servers__RestartLimit=$chaos_limit UMLMICRO_Servers__RestartWindowSeconds=$chaos_window \
  "$repo/umlmicro" run --mode "$mode" -- true >"$pre/stdout" 2>"$pre/stderr" </dev/null) || pre_status=$?
budget_known=true
if [ "$pre_status" -eq 2 ] && grep -q "unknown key 'Servers:Restart" "$pre/stderr"; then
  budget_known=false
  echo "chaos: note: this kernel does not know Servers:RestartLimit (no reincarnation service yet):"
  echo "chaos:       runs go without a restart budget; expect faults not survived"
elif [ "$pre_status" -ne 0 ]; then
  echo "chaos: ./umlmicro run -- true failed (exit $pre_status):" >&2
  cat "$pre/stderr" >&2
  exit 2
else
  restart_env=(UMLMICRO_Servers__RestartLimit="$chaos_limit" UMLMICRO_Servers__RestartWindowSeconds="$chaos_window")
fi

# ---------------------------------------------------------------------------------------------------
# Expected results: each workload natively and under umlmicro without faults; they must agree, and they
# must be what the workload is known to produce, or there is nothing to compare the chaos runs with.

declare -A baseline_ms guest_ms
check_known() { # WORKLOAD DIR: the baseline is the workload's known result, not just any output
  local w=$1 d=$2
  case $w in
    files) cmp -s "$d/stdout" <(seq 200) ;;
    namespace) cmp -s "$d/stdout" <(seq 30; printf 'k%s\n' 10 15 20 25 30 5 | LC_ALL=C sort) ;;
    make)
      cmp -s "$d/stdout" "$tmp/expected/make.program" &&
        for o in demo main.o m1.o m2.o m3.o m4.o m5.o m6.o m7.o; do grep -q " ./$o\$" "$d/manifest" || return 1; done ;;
    python) [ "$(tail -n1 "$d/stdout")" = "threads 4, files 104" ] && [ "$(wc -l <"$d/stdout")" -eq 5 ] ;;
  esac && [ "$(cat "$d/status")" = 0 ] && [ ! -s "$d/stderr" ]
}

for w in "${fault_workloads[@]}"; do
  prepare "$w"
  run_native "$w" "$tmp/expected/$w"
  if ! check_known "$w" "$tmp/expected/$w"; then
    echo "chaos: $w natively did not produce its known result (exit $(cat "$tmp/expected/$w/status")):" >&2
    head -20 "$tmp/expected/$w/stdout" "$tmp/expected/$w/stderr" >&2
    exit 2
  fi
  # The monitor with no fault planned only notes when the guest started.
  run_guest "$w" "$tmp/baseline/$w" chaos_monitor /dev/null
  baseline_ms[$w]=$(cat "$tmp/baseline/$w/ms")
  guest_ms[$w]=$(cat "$tmp/baseline/$w/guest_ms")
  if diffs=$(same "$tmp/expected/$w" "$tmp/baseline/$w") && [ -n "$diffs" ]; then
    echo "chaos: $w without faults under umlmicro differs from native ($diffs); nothing to compare with:" >&2
    head -20 "$tmp/baseline/$w/stderr" >&2
    mkdir -p "$tmp/failed"; cp -r "$tmp/baseline/$w" "$tmp/failed/baseline-$w"
    exit 2
  fi
  if [ "$RUN_LEFT" -ne 0 ]; then
    echo "chaos: $w without faults left something behind:" >&2
    cat "$tmp/baseline/$w/leftovers" >&2
    mkdir -p "$tmp/failed"
    exit 2
  fi
  echo "chaos: $w: expected result agreed natively and under umlmicro (without faults: ${baseline_ms[$w]} ms, the guest ${guest_ms[$w]} ms)"
done

# ---------------------------------------------------------------------------------------------------
# Chaos runs: the faults are spread evenly over the workloads; each run gets 2-6 of them at random
# moments within the time the guest ran without faults, each aimed at a random live server. Runs repeat until the
# workload's share was injected (a fault planned after the guest ended is not made, so a run may inject
# fewer than planned), up to a bound that stops a workload too short to be hit.

servers=(vfs mm sched)
declare -A injected=([vfs]=0 [mm]=0 [sched]=0)
declare -A w_runs w_faults w_survived w_lost w_status w_left
total_runs=0 total_faults=0 total_survived=0 total_lost=0 total_status=0 total_left=0 total_hung=0 total_failed=0

n_workloads=${#fault_workloads[@]}
i=0
for w in "${fault_workloads[@]}"; do
  share=$(( faults / n_workloads + (i < faults % n_workloads ? 1 : 0) ))
  i=$(( i + 1 ))
  w_runs[$w]=0 w_faults[$w]=0 w_survived[$w]=0 w_lost[$w]=0 w_status[$w]=0 w_left[$w]=0
  max_runs=$(( 3 * share + 5 ))
  while [ "${w_faults[$w]}" -lt "$share" ] && [ "${w_runs[$w]}" -lt "$max_runs" ]; do
    r=$(( w_runs[$w] + 1 ))
    dir=$tmp/runs/$w-$r
    mkdir -p "$dir"
    rand 5; k=$(( REPLY + 2 ))
    left=$(( share - w_faults[$w] ))
    [ "$k" -le "$left" ] || k=$left
    span=$(( guest_ms[$w] * 9 / 10 + 1 ))
    : >"$dir/plan.unsorted"
    for (( j = 0; j < k; j++ )); do
      rand "$span"; at=$REPLY
      rand 3; first=$REPLY
      rand 2; second=$(( (first + 1 + REPLY) % 3 ))
      echo "$at ${servers[$first]} ${servers[$second]} ${servers[$(( 3 - first - second ))]}" >>"$dir/plan.unsorted"
    done
    sort -n "$dir/plan.unsorted" >"$dir/plan"
    run_guest "$w" "$dir" chaos_monitor "$dir/plan"
    w_runs[$w]=$r

    n=0 names=()
    while read -r what name _; do
      [ "$what" = fault ] || continue
      n=$(( n + 1 )); names+=("$name")
      injected[$name]=$(( injected[$name] + 1 ))
    done <"$dir/log"
    w_faults[$w]=$(( w_faults[$w] + n ))
    verdict=ok
    diffs=$(same "$tmp/expected/$w" "$dir")
    grep -q '^hung' "$dir/log" && { diffs="hung (killed) $diffs"; total_hung=$(( total_hung + 1 )); }
    if [ -z "$diffs" ]; then
      w_survived[$w]=$(( w_survived[$w] + n ))
    else
      verdict="FAILED: $diffs"
      total_failed=$(( total_failed + 1 ))
      [[ $diffs == *stdout* || $diffs == *stderr* || $diffs == *files* ]] && w_lost[$w]=$(( w_lost[$w] + 1 ))
      [[ $diffs == *status* ]] && w_status[$w]=$(( w_status[$w] + 1 ))
      line=$(first_kernel_line "$dir")
      [ -z "$line" ] || verdict="$verdict; $line"
      keep_failed "$dir" "$w-$r" "$tmp/expected/$w"
    fi
    if [ "$RUN_LEFT" -ne 0 ]; then
      w_left[$w]=$(( w_left[$w] + RUN_LEFT ))
      verdict="$verdict; LEFT: $(paste -sd';' "$dir/leftovers")"
      [ -d "$tmp/failed/$w-$r" ] || keep_failed "$dir" "$w-$r" "$tmp/expected/$w"
    fi
    echo "chaos: $w run $r: $n fault(s) (${names[*]:-none}) of $k planned, $(cat "$dir/ms") ms: $verdict"
  done
  total_runs=$(( total_runs + w_runs[$w] ))
  total_faults=$(( total_faults + w_faults[$w] ))
  total_survived=$(( total_survived + w_survived[$w] ))
  total_lost=$(( total_lost + w_lost[$w] ))
  total_status=$(( total_status + w_status[$w] ))
  total_left=$(( total_left + w_left[$w] ))
done

# ---------------------------------------------------------------------------------------------------
# The crash loop: with a budget of $loop_limit restarts, the VFS is killed $loop_limit+1 times, each time
# once its successor serves the guest. The VFS, because the loop calls it all the time: the supervisor
# restarts a server when it next calls it, and MM, say, may only get notifications for a long while. Expected: exit 123, exactly one line
# on stderr (the supervisor's), stdout a clean prefix of 1, 2, 3, ... (nothing garbled), nothing left.

loop_result='not run'
loop_ok=true
if [[ " ${selected[*]} " == *" crash-loop "* ]]; then
  prepare crash-loop
  victim=vfs
  dir=$tmp/runs/crash-loop
  saved_env=("${restart_env[@]}")
  if [ "$budget_known" = true ]; then
    restart_env=(UMLMICRO_Servers__RestartLimit="$loop_limit" UMLMICRO_Servers__RestartWindowSeconds="$loop_window")
  fi
  baseline_ms[crash-loop]=3000
  run_guest crash-loop "$dir" crash_loop_monitor "$victim" $(( loop_limit + 1 )) "$work/crash-loop"
  restart_env=("${saved_env[@]}")
  kills=$(grep -c '^fault ' "$dir/log" || true)
  status=$(cat "$dir/status")
  problems=()
  [ "$kills" -eq $(( loop_limit + 1 )) ] || problems+=("the guest ended after $kills of $(( loop_limit + 1 )) kills")
  grep -q '^went-on' "$dir/log" && problems+=("the guest went on after kill $(( loop_limit + 1 )): the budget was not enforced")
  grep -q '^stuck' "$dir/log" && problems+=("the guest neither went on nor ended within $(( progress_wait_ms / 1000 )) s of kill $(awk '/^stuck/ { print $3 }' "$dir/log")")
  grep -q '^hung' "$dir/log" && problems+=("hung (killed)")
  [ "$status" = "$crash_loop_status" ] || problems+=("exit $status (expected $crash_loop_status)")
  [ "$(wc -l <"$dir/stderr")" -eq 1 ] && grep -q '^umlmicro: ' "$dir/stderr" ||
    problems+=("stderr is not one 'umlmicro: ' line but $(wc -l <"$dir/stderr") line(s)")
  awk 'NR != $0 { bad = 1 } END { exit bad }' "$dir/stdout" || problems+=("stdout is not a clean prefix of 1, 2, 3, ...")
  [ "$RUN_LEFT" -eq 0 ] || problems+=("LEFT: $(paste -sd';' "$dir/leftovers")")
  total_left=$(( total_left + RUN_LEFT ))
  line=$(first_kernel_line "$dir")
  if [ ${#problems[@]} -eq 0 ]; then
    loop_result="ok: exit $status after $kills kills of $victim; stderr: $line"
  else
    loop_ok=false
    old_ifs=$IFS; IFS=';'; loop_result="FAILED: ${problems[*]}"; IFS=$old_ifs
    [ -z "$line" ] || loop_result="$loop_result; stderr: $line"
    keep_failed "$dir" crash-loop "$dir"
  fi
  echo "chaos: crash loop (RestartLimit=$loop_limit, $victim killed until the budget is gone): $loop_result"
fi

# ---------------------------------------------------------------------------------------------------
# The report.

pass=true
[ "$total_survived" -eq "$total_faults" ] || pass=false
[ "$total_failed" -eq 0 ] || pass=false
[ "$total_lost" -eq 0 ] || pass=false
[ "$total_left" -eq 0 ] || pass=false
[ "$loop_ok" = true ] || pass=false
# A run that injects nothing proves nothing: the harness must have made the faults it was asked for.
[ "$total_faults" -ge "$faults" ] || [ ${#fault_workloads[@]} -eq 0 ] || pass=false

echo
echo "== chaos report: seed $seed, mode $mode, restart budget $([ "$budget_known" = true ] && echo "$chaos_limit per ${chaos_window}s" || echo "unknown to this kernel") =="
printf '%-10s %5s %7s %9s %10s %8s %10s\n' workload runs faults survived "data lost" "status≠" leftovers
for w in "${fault_workloads[@]}"; do
  printf '%-10s %5d %7d %9d %10d %8d %10d\n' "$w" "${w_runs[$w]}" "${w_faults[$w]}" "${w_survived[$w]}" \
    "${w_lost[$w]}" "${w_status[$w]}" "${w_left[$w]}"
done
echo "faults injected: $total_faults of $faults asked (vfs ${injected[vfs]}, mm ${injected[mm]}, sched ${injected[sched]})"
echo "faults survived: $total_survived"
echo "runs:            $total_runs ($(( total_runs - total_failed )) exactly as without faults, $total_failed not; $total_hung hung)"
echo "data lost:       $total_lost run(s) whose stdout, stderr or files differ"
echo "leftovers:       $total_left (processes or state directories left after a run)"
echo "crash loop:      $loop_result"
if [ "$pass" = true ]; then
  echo "result:          PASS"
  exit 0
fi
echo "result:          FAIL$([ -d "$tmp/failed" ] && echo " (failed runs' outputs and diffs: $tmp/failed)")"
exit 1
