#!/usr/bin/env bash
# bench/run.sh: the UmlMicro benchmark. Builds bench/ops.c and bench/ptrace_floor.c into
# bench/out/, runs every operation natively, under `umlmicro run --mode M --` for each mode
# asked for, and under the peers (strace, proot) when they are installed, measures the raw
# ptrace floor, prints the tables and writes them to bench/RESULTS.md. See bench/README.md.
set -euo pipefail

here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
root=$(cd -- "$here/.." && pwd)
out=$here/out
me="bench/run.sh"

usage() {
  cat <<EOF
usage: $me [OPTIONS]

Runs each operation of bench/ops.c natively, under umlmicro (one column per mode) and under the
peers, plus the raw ptrace floor, and prints ns per operation and ratios to native. The same
tables go to bench/RESULTS.md (generated; do not edit it by hand).

options:
  --mode M[,M...]    umlmicro modes to measure, repeatable; 'all' = tt,sysemu,seccomp
                     (default: tt). A mode that umlmicro rejects gets n/a.
  --umlmicro PATH    the umlmicro command (default: \$UMLMICRO, else $root/umlmicro)
  --ops OP[,OP...]   only these operations (default: all; see bench/out/ops -l)
  --pin WHAT         peers: pin strace/proot (tracer and tracee) to one CPU, leave native and
                             umlmicro unpinned (default)
                     all:   run native, umlmicro and the peers under taskset -c CPU
                     none:  pin nothing (the ptrace floor always pins itself, see README)
  --no-peers         skip the strace and proot columns
  --no-floor         skip the ptrace floor
  --no-vcpus         skip the virtual-CPU rows (bench/spin.c under --cpus 2 and --cpus 1)
  --no-startup       skip the startup rows (run -- /bin/true as a whole, wall and CPU)
  --no-rpc           skip the round-trip rows (bench/rpcping: a bare request to each server)
  --no-deep          skip the deep-path row (a shell cd's down 1,500 nested directories)
  --no-macro         skip the macro row (the conformance suite's total time, native and under
                     the first mode; needs ../shared/conformance/run.sh or \$CONFORMANCE)
  --reps R           repetitions per measurement, the median is reported (default 5)
  --rep-ms MS        length of one repetition in milliseconds (default 150)
  --quick            a fast, noisier run (3 repetitions of 40 ms): for trying the script
  --timeout SEC      limit for one guest run, build included (default 300)
  --results FILE     where to write the Markdown (default bench/RESULTS.md)
  --no-results       do not write the Markdown file
  -h, --help         this text

environment: UMLMICRO (the umlmicro command), CC (default gcc), CONFORMANCE (the conformance suite's run.sh).
exit status: 0 when the tables were produced (cells that could not be measured say n/a),
1 when the benchmark programs cannot be built, 2 for bad usage.
EOF
}

bad_usage() {
  echo "$me: $*" >&2
  echo "$me: see '$me --help'" >&2
  exit 2
}

say() { echo "bench: $*" >&2; }

# ---------------------------------------------------------------- options
UMLMICRO=${UMLMICRO:-$root/umlmicro}
modes=()
only_ops=""
pin=peers
peers=1
floor=1
vcpus=1
startup=1
rpc=1
deep=1
deep_levels=1500
macro=1
CONFORMANCE=${CONFORMANCE:-$root/../shared/conformance/run.sh}
spin_iterations=300000000
reps=5
rep_ms=150
floor_reps=5
floor_ms=200
tmo=300
results=$here/RESULTS.md
write_results=1
cmdline="$me${*:+ $*}"

posint() { [[ $2 =~ ^[1-9][0-9]*$ ]] || bad_usage "$1 wants a positive integer, not '$2'"; }
need_arg() { [ "$2" -ge 2 ] || bad_usage "option $1 needs a value"; }

while [ $# -gt 0 ]; do
  case $1 in
    -h|--help) usage; exit 0 ;;
    --mode) need_arg "$1" $#
      IFS=, read -r -a ms <<<"$2"
      for m in "${ms[@]}"; do
        case $m in
          all) modes+=(tt sysemu seccomp) ;;
          *) [[ $m =~ ^[a-z][a-z0-9_-]*$ ]] || bad_usage "bad mode name '$m'"; modes+=("$m") ;;
        esac
      done
      shift 2 ;;
    --mode=*) set -- --mode "${1#--mode=}" "${@:2}" ;;
    --umlmicro) need_arg "$1" $#; UMLMICRO=$2; shift 2 ;;
    --ops) need_arg "$1" $#; only_ops=$2; shift 2 ;;
    --pin) need_arg "$1" $#
      case $2 in peers|all|none) pin=$2 ;; *) bad_usage "--pin wants peers, all or none, not '$2'" ;; esac
      shift 2 ;;
    --no-peers) peers=0; shift ;;
    --no-floor) floor=0; shift ;;
    --no-vcpus) vcpus=0; shift ;;
    --no-startup) startup=0; shift ;;
    --no-rpc) rpc=0; shift ;;
    --no-deep) deep=0; shift ;;
    --no-macro) macro=0; shift ;;
    --reps) need_arg "$1" $#; posint "$1" "$2"; reps=$2; floor_reps=$2; shift 2 ;;
    --rep-ms) need_arg "$1" $#; posint "$1" "$2"; rep_ms=$2; shift 2 ;;
    --quick) reps=3; rep_ms=40; floor_reps=3; floor_ms=60; spin_iterations=60000000; shift ;;
    --timeout) need_arg "$1" $#; posint "$1" "$2"; tmo=$2; shift 2 ;;
    --results) need_arg "$1" $#; results=$2; shift 2 ;;
    --no-results) write_results=0; shift ;;
    *) bad_usage "unknown argument '$1'" ;;
  esac
done
[ ${#modes[@]} -gt 0 ] || modes=(tt)
# drop duplicate modes, keep the order
declare -A seen=()
uniq_modes=()
for m in "${modes[@]}"; do [ -n "${seen[$m]:-}" ] || { seen[$m]=1; uniq_modes+=("$m"); }; done
modes=("${uniq_modes[@]}")

# operation -> N (an upper bound per repetition; ops itself fits a repetition into --rep-ms)
all_ops=(getppid getpid write-devnull open-close stat fork-wait exec-true mmap-munmap getpid-beside-stat)
declare -A N=([getppid]=2000000 [getpid]=2000000 [write-devnull]=2000000 [open-close]=500000
              [stat]=1000000 [fork-wait]=20000 [exec-true]=5000 [mmap-munmap]=1000000 [getpid-beside-stat]=2000000)
if [ -n "$only_ops" ]; then
  IFS=, read -r -a ops_list <<<"$only_ops"
  for o in "${ops_list[@]}"; do [ -n "${N[$o]:-}" ] || bad_usage "unknown operation '$o' (known: ${all_ops[*]})"; done
else
  ops_list=("${all_ops[@]}")
fi

command -v timeout >/dev/null || { echo "$me: 'timeout' (coreutils) is required" >&2; exit 1; }
if [ "$pin" != none ]; then
  command -v taskset >/dev/null || { echo "$me: --pin $pin needs 'taskset' (util-linux); use --pin none" >&2; exit 1; }
fi

# ---------------------------------------------------------------- build
CC=${CC:-gcc}
command -v "$CC" >/dev/null || { echo "$me: no C compiler '$CC' (set CC or install gcc)" >&2; exit 1; }
mkdir -p "$out/logs"
for prog in ops ptrace_floor spin; do
  if [ ! -x "$out/$prog" ] || [ "$here/$prog.c" -nt "$out/$prog" ]; then
    say "building bench/out/$prog"
    "$CC" -O2 -Wall -Wextra -pthread -o "$out/$prog.tmp" "$here/$prog.c" || { echo "$me: building $prog.c failed" >&2; exit 1; }
    mv -f "$out/$prog.tmp" "$out/$prog"
  fi
done
datafile=$out/data.txt
[ -s "$datafile" ] || printf 'a small host file for the open-close and stat operations\n' >"$datafile"

pin_cpu=$(awk '/^Cpus_allowed_list/ {print $2}' /proc/self/status | cut -d, -f1 | cut -d- -f1)
pin_cpu=${pin_cpu:-0}
pin_cmd=(taskset -c "$pin_cpu")
pin_native=(); pin_uml=(); pin_peer=()
case $pin in
  peers) pin_peer=("${pin_cmd[@]}") ;;
  all) pin_native=("${pin_cmd[@]}"); pin_uml=("${pin_cmd[@]}"); pin_peer=("${pin_cmd[@]}") ;;
esac

# ---------------------------------------------------------------- helpers
# kv LINE KEY: the value of KEY=value in LINE
kv() { awk -v k="$2" '{for (i = 1; i <= NF; i++) if (index($i, k "=") == 1) {print substr($i, length(k) + 2); exit}}' <<<"$1"; }
# last non-empty line of a file, shortened, for notes
lastline() { grep -v '^[[:space:]]*$' "$1" 2>/dev/null | tail -n 1 | cut -c1-160 || true; }
fmt_ns() { [ -n "$1" ] && awk -v x="$1" 'BEGIN {printf "%.0f", x}' || echo "n/a"; }
fmt_ratio() {
  if [ -n "$1" ] && [ -n "$2" ]; then
    awk -v a="$1" -v b="$2" 'BEGIN {if (b <= 0) {print "n/a"; exit} r = a / b;
      if (r < 10) printf "%.2fx", r; else if (r < 100) printf "%.1fx", r; else printf "%.0fx", r}'
  else echo "n/a"; fi
}

declare -A NS=() P50=() P99=()
notes=()
note() { notes+=("$*"); say "note: $*"; }

# prefix CFG: sets the caller's cmd to what runs a program under configuration CFG
prefix() {
  case $1 in
    native) cmd=(${pin_native[@]+"${pin_native[@]}"}) ;;
    strace) cmd=(${pin_peer[@]+"${pin_peer[@]}"} strace -f -o /dev/null) ;;
    proot) cmd=(${pin_peer[@]+"${pin_peer[@]}"} proot -r /) ;;
    *) cmd=(${pin_uml[@]+"${pin_uml[@]}"} "$UMLMICRO" run --mode "$1" --) ;;
  esac
}

# run_op CFG OP: runs bench/out/ops OP under configuration CFG and records the result
run_op() {
  local cfg=$1 op=$2 log=$out/logs/$1.$2 rc=0 line
  local -a cmd
  prefix "$cfg"
  cmd+=("$out/ops" -r "$reps" -t "$rep_ms" -f "$datafile" "$op" "${N[$op]}")
  printf '%s\n' "${cmd[*]}" >"$log.cmd"
  timeout -k 5 "$tmo" "${cmd[@]}" >"$log.out" 2>"$log.err" </dev/null || rc=$?
  line=$(grep -m1 '^op=' "$log.out" || true)
  if [ $rc -ne 0 ] || [ -z "$line" ]; then
    local why
    if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then why="timed out after ${tmo}s"
    else why="exit $rc: $(lastline "$log.err")"; fi
    note "$op under $cfg failed ($why; see bench/out/logs/$cfg.$op.err)"
    return 0
  fi
  NS[$cfg/$op]=$(kv "$line" ns_per_op)
  P50[$cfg/$op]=$(kv "$line" p50_ns)
  P99[$cfg/$op]=$(kv "$line" p99_ns)
  say "$(printf '%-8s %-14s %12s ns/op' "$cfg" "$op" "$(fmt_ns "${NS[$cfg/$op]}")")"
}

# ---------------------------------------------------------------- which columns
cfgs=(native)
mode_cfgs=()
declare -A NA=()   # cfg -> why the whole column is n/a
for m in "${modes[@]}"; do
  case $m in native|strace|proot) bad_usage "'$m' is not a umlmicro mode" ;; esac
  cfgs+=("$m"); mode_cfgs+=("$m")
  if ! command -v "$UMLMICRO" >/dev/null 2>&1; then
    NA[$m]="umlmicro not found: $UMLMICRO"; note "mode $m: ${NA[$m]}"; continue
  fi
  say "checking umlmicro --mode $m (builds the kernel first when stale)"
  rc=0
  # The probe is the call that builds a stale kernel. MSBUILDDISABLENODEREUSE: no MSBuild node
  # outlives the build (a lingering node can inherit the wrapper's build lock and block others).
  MSBUILDDISABLENODEREUSE=1 timeout -k 5 "$tmo" "$UMLMICRO" run --mode "$m" -- /bin/true \
    >"$out/logs/probe.$m.out" 2>"$out/logs/probe.$m.err" </dev/null || rc=$?
  if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
    NA[$m]="'umlmicro run --mode $m -- /bin/true' timed out after ${tmo}s (see bench/out/logs/probe.$m.err)"
    note "mode $m not measured: ${NA[$m]}"
  elif [ $rc -ne 0 ]; then
    NA[$m]="'umlmicro run --mode $m -- /bin/true' exit $rc: $(lastline "$out/logs/probe.$m.err")"
    note "mode $m not measured: ${NA[$m]}"
  fi
done
peer_cfgs=()
if [ $peers = 1 ]; then
  for p in strace proot; do
    if command -v $p >/dev/null 2>&1; then cfgs+=("$p"); peer_cfgs+=("$p")
    else note "peer $p is not installed: its column is left out"; fi
  done
fi

# ---------------------------------------------------------------- measure
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
t_start=$(date +%s)
for op in "${ops_list[@]}"; do
  for cfg in "${cfgs[@]}"; do
    [ -z "${NA[$cfg]:-}" ] || continue
    run_op "$cfg" "$op"
  done
done

declare -A FL=()   # mech/pin -> ns per syscall
if [ $floor = 1 ]; then
  say "measuring the raw ptrace floor"
  rc=0
  timeout -k 5 "$tmo" "$out/ptrace_floor" -r "$floor_reps" -t "$floor_ms" \
    >"$out/logs/floor.out" 2>"$out/logs/floor.err" </dev/null || rc=$?
  [ $rc -eq 0 ] || note "ptrace_floor failed (exit $rc: $(lastline "$out/logs/floor.err"))"
  while IFS= read -r line; do
    case $line in floor=*) FL[$(kv "$line" floor)/$(kv "$line" pin)]=$(kv "$line" ns_per_syscall) ;; esac
  done <"$out/logs/floor.out"
fi

# timed_runs CFG WHAT LOG CMD...: runs CMD --reps times, each a fresh process, and appends "wall user system" (s) of
# each run to LOG.out; a failed run is noted (WHAT under CFG) and ends it with status 1.
timed_runs() {
  local cfg=$1 what=$2 log=$3 rc=0 i
  shift 3
  printf '%s\n' "$*" >"$log.cmd"
  : >"$log.out"
  for ((i = 0; i < reps; i++)); do
    { TIMEFORMAT='%R %U %S'; time timeout -k 5 "$tmo" "$@" >/dev/null 2>"$log.err" </dev/null || rc=$?; } 2>>"$log.out"
    if [ $rc -ne 0 ]; then note "$what under $cfg failed (exit $rc: $(lastline "$log.err"))"; return 1; fi
  done
}

# median_ms FILE EXPR: the median, in ms, of the awk expression EXPR (seconds) over the lines of FILE
median_ms() { awk "{print ($2) * 1000}" "$1" | sort -n | sed -n "$(( (reps + 1) / 2 ))p"; }

# Startup: `CMD /bin/true` as a whole, from exec to exit: wall time, and CPU time (user + system) of every process
# it started and waited for (the supervisor's servers too). Medians of --reps runs, each a fresh process.
declare -A SU_WALL=() SU_CPU=()
run_startup() {
  local cfg=$1 log=$out/logs/startup.$1
  local -a cmd
  prefix "$cfg"
  cmd+=(/bin/true)
  timed_runs "$cfg" /bin/true "$log" "${cmd[@]}" || return 0
  SU_WALL[$cfg]=$(median_ms "$log.out" '$1')
  SU_CPU[$cfg]=$(median_ms "$log.out" '$2 + $3')
  say "$(printf '%-8s startup %8s ms wall %8s ms CPU' "$cfg" "${SU_WALL[$cfg]}" "${SU_CPU[$cfg]}")"
}
if [ $startup = 1 ]; then
  for cfg in "${cfgs[@]}"; do
    [ -z "${NA[$cfg]:-}" ] || continue
    run_startup "$cfg"
  done
fi

# Round trips: bench/rpcping starts each server of build/Release itself and times "hello", a request the server
# answers with no work, as the supervisor sends requests (synchronously, one at a time): cold (process start to first
# answer), then the median run of --reps of 5,000 warm ones; unpinned, and with rpcping and the server on one CPU.
declare -A RT=()
rt_cfgs=(unpinned one-cpu)
run_rpc() {
  local bin=$root/build/Release ping=$here/rpcping/bin/Release/net10.0/RpcPing srv cfg i log
  if ! dotnet build "$here/rpcping/RpcPing.csproj" -c Release -nologo -v q >"$out/logs/rpcping.build" 2>&1; then
    note "bench/rpcping does not build (see bench/out/logs/rpcping.build): no round-trip rows"; return 0
  fi
  for srv in Vfs Mm Sched; do
    [ -x "$bin/Servers.$srv" ] || { note "no $bin/Servers.$srv: build the kernel first"; continue; }
    for cfg in "${rt_cfgs[@]}"; do
      log=$out/logs/rpc.$srv.$cfg
      : >"$log.out"
      for ((i = 0; i < reps; i++)); do
        if [ "$cfg" = one-cpu ]; then taskset -c "$pin_cpu" "$ping" "$bin/Servers.$srv" 5000 >>"$log.out" 2>"$log.err" || true
        else "$ping" "$bin/Servers.$srv" 5000 >>"$log.out" 2>"$log.err" || true; fi
      done
      local line
      line=$(grep '^server=' "$log.out" | sort -t= -k6 -g | awk -v r="$reps" 'NR == int((r + 1) / 2)' || true)
      [ -n "$line" ] || line=$(grep -m1 '^server=' "$log.out" || true)
      if [ -z "$line" ]; then note "rpcping $srv ($cfg) failed: $(lastline "$log.err")"; continue; fi
      for k in cold_us first_us mean_us p50_us p99_us; do RT[$srv/$cfg/$k]=$(kv "$line" "$k"); done
      say "$(printf 'rpc %-6s %-9s p50 %8s us  mean %8s us  cold %8s us' "$srv" "$cfg" "${RT[$srv/$cfg/p50_us]}" "${RT[$srv/$cfg/mean_us]}" "${RT[$srv/$cfg/cold_us]}")"
    done
  done
}
[ $rpc = 0 ] || run_rpc

# Deep path: a shell cd's down $deep_levels nested directories (made natively first, in bench/out/deep). dash hands
# chdir the whole path each time, as most shells do, so every level is a longer path to resolve. Median wall ms.
declare -A DP_MS=()
run_deep() {
  local cfg=$1 log=$out/logs/deep.$1
  local -a cmd
  prefix "$cfg"
  cmd+=(/bin/sh -c "cd '$out/deep' && i=0 && while [ \$i -lt $deep_levels ]; do cd d || exit 1; i=\$((i+1)); done")
  timed_runs "$cfg" "the deep-path row" "$log" "${cmd[@]}" || return 0
  DP_MS[$cfg]=$(median_ms "$log.out" '$1')
  say "$(printf '%-8s cd down %s directories %8s ms wall' "$cfg" "$deep_levels" "${DP_MS[$cfg]}")"
}
if [ $deep = 1 ]; then
  if [ ! -d "$out/deep/$(printf 'd/%.0s' $(seq $deep_levels))" ]; then
    rm -rf "$out/deep" && mkdir -p "$out/deep" && (cd "$out/deep" && mkdir -p "$(printf 'd/%.0s' $(seq $deep_levels))")
  fi
  for cfg in "${cfgs[@]}"; do
    [ -z "${NA[$cfg]:-}" ] || continue
    run_deep "$cfg"
  done
fi

# Macro: the conformance suite as a whole. Its runner runs every case natively and under a prefix; with an empty
# prefix both runs are native, so the suite's own native time is half of that, and under umlmicro it is the whole
# run minus that half. One run each (the suite takes a while).
declare -A MC_S=()
macro_mode=${mode_cfgs[0]:-}
run_macro() {
  local log=$out/logs/macro rc=0 t0 t1 t2
  t0=$(date +%s.%N)
  "$CONFORMANCE" >"$log.native.out" 2>&1 </dev/null || rc=$?
  t1=$(date +%s.%N)
  if [ $rc -ne 0 ]; then note "the conformance suite failed natively (exit $rc; see bench/out/logs/macro.native.out)"; return 0; fi
  "$CONFORMANCE" "$UMLMICRO" run --mode "$macro_mode" -- >"$log.$macro_mode.out" 2>&1 </dev/null || rc=$?
  t2=$(date +%s.%N)
  if [ $rc -ne 0 ]; then note "the conformance suite failed under $macro_mode (exit $rc; see bench/out/logs/macro.$macro_mode.out)"; fi
  MC_S[native]=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", (b - a) / 2}')
  MC_S[$macro_mode]=$(awk -v a="$t0" -v b="$t1" -v c="$t2" 'BEGIN {printf "%.1f", (c - b) - (b - a) / 2}')
  MC_S[cases]=$(grep -Eo '[0-9]+ passed, [0-9]+ failed' "$log.$macro_mode.out" | tail -1)
  say "macro: conformance suite native ${MC_S[native]} s, under $macro_mode ${MC_S[$macro_mode]} s"
}
if [ $macro = 1 ] && [ -n "$macro_mode" ] && [ -z "${NA[$macro_mode]:-}" ]; then
  if [ -x "$CONFORMANCE" ]; then run_macro
  else note "the macro row needs the conformance suite ($CONFORMANCE is not there): left out"; fi
fi

# Virtual CPUs (bench/spin.c): N CPU-bound threads (N = 1, 2, 4) natively, natively on one CPU (taskset -c 0),
# under the default --cpus and under --cpus 1 (round-robin; fifo for N = 2), in the first mode asked for; and one
# spinner beside a thread of getpid calls, with getpid alone for comparison. Runs are interleaved (every
# configuration once per round, --reps rounds) so that the machine's drift hits them all alike; medians.
declare -A VC_MS=() VC_FIRST=() VC_ALL=() VC_GETPID=() VC_SHARES=()
vcpu_rows=(spin1 spin2 spin4 mixed getpid pair share)
vcpu_mode=${mode_cfgs[0]:-}
# The default mode when it was asked for: what a user runs.
for m in "${mode_cfgs[@]}"; do [ "$m" = seccomp ] && vcpu_mode=seccomp; done
vcpu_cfgs_of() { # ROW: its configurations
  case $1 in
    spin2) echo "native one-cpu default cpus1 cpus1-fifo" ;;
    spin1|spin4) echo "native one-cpu default cpus1" ;;
    mixed) echo "native default" ;;
    getpid|pair) echo "native default$(command -v strace >/dev/null && echo ' strace')" ;;
    share) echo "one-cpu cpus1 cpus1-fair" ;;
  esac
}
vcpu_cmd() { # ROW CFG: the command line
  local -a c=()
  case $2 in
    native) c=(${pin_native[@]+"${pin_native[@]}"}) ;;
    one-cpu) c=(taskset -c 0) ;;
    default) c=(${pin_uml[@]+"${pin_uml[@]}"} "$UMLMICRO" run --mode "$vcpu_mode" --) ;;
    cpus1) c=(${pin_uml[@]+"${pin_uml[@]}"} "$UMLMICRO" run --mode "$vcpu_mode" --cpus 1 --) ;;
    cpus1-fifo) c=(${pin_uml[@]+"${pin_uml[@]}"} env UMLMICRO_Sched__Policy=fifo "$UMLMICRO" run --mode "$vcpu_mode" --cpus 1 --) ;;
    cpus1-fair) c=(${pin_uml[@]+"${pin_uml[@]}"} env UMLMICRO_Sched__Policy=fair-share "$UMLMICRO" run --mode "$vcpu_mode" --cpus 1 --) ;;
    strace) c=(${pin_peer[@]+"${pin_peer[@]}"} strace -f -o /dev/null) ;;
  esac
  case $1 in
    spin*) c+=("$out/spin" "$spin_iterations" "${1#spin}") ;;
    mixed) c+=("$out/spin" "$spin_iterations" 1 getpid) ;;
    getpid) c+=("$out/spin" getpid "$getpid_count") ;;
    pair) c+=(/bin/sh -c "\"\$0\" getpid $getpid_count & \"\$0\" getpid $getpid_count; wait" "$out/spin") ;;
    share) c+=("$out/spin" share "$share_ms" 0 5) ;;
  esac
  printf '%s\n' "${c[@]}"
}
getpid_count=50000
share_ms=1000
run_vcpus() {
  local row cfg i line log key median
  local -a cmd
  for row in "${vcpu_rows[@]}"; do for cfg in $(vcpu_cfgs_of "$row"); do : >"$out/logs/vcpus.$row.$cfg.out"; done; done
  for ((i = 0; i < reps; i++)); do
    for row in "${vcpu_rows[@]}"; do
      for cfg in $(vcpu_cfgs_of "$row"); do
        log=$out/logs/vcpus.$row.$cfg
        [ -e "$log.failed" ] && continue
        mapfile -t cmd < <(vcpu_cmd "$row" "$cfg")
        printf '%s\n' "${cmd[*]}" >"$log.cmd"
        if ! timeout -k 5 "$tmo" "${cmd[@]}" >>"$log.out" 2>"$log.err" </dev/null; then
          note "spin $row under $cfg failed ($(lastline "$log.err"))"
          touch "$log.failed"
        fi
      done
    done
  done
  for row in "${vcpu_rows[@]}"; do
    for cfg in $(vcpu_cfgs_of "$row"); do
      log=$out/logs/vcpus.$row.$cfg
      [ -e "$log.failed" ] && continue
      key=wall_ms; [[ $row == getpid || $row == pair ]] && key=getpid_ns; [[ $row == share ]] && key=shares
      line=$(grep "$key=" "$log.out" | awk -v k="$key" '{for (i = 1; i <= NF; i++) if (index($i, k "=") == 1) print substr($i, length(k) + 2), $0}' |
        sort -n | sed -n "$(( (reps + 1) / 2 ))p" | cut -d' ' -f2-)
      VC_MS[$row/$cfg]=$(kv "$line" wall_ms)
      VC_FIRST[$row/$cfg]=$(kv "$line" first_done_pct)
      VC_ALL[$row/$cfg]=$(kv "$line" all_progressed)
      VC_GETPID[$row/$cfg]=$(kv "$line" getpid_ns)
      VC_SHARES[$row/$cfg]=$(kv "$line" shares)
      # The getpid figure of the mixed and pair rows: the median of every loop's, not that of the median run.
      if [[ $row == mixed || $row == pair ]]; then
        median=$(grep -o 'getpid_ns=[0-9.]*' "$log.out" | cut -d= -f2 | sort -n | sed -n "$(( (reps + 1) / 2 ))p")
        VC_GETPID[$row/$cfg]=$median
      fi
      say "$(printf '%-7s %-10s wall %8s ms getpid %6s ns shares %s' "$row" "$cfg" "${VC_MS[$row/$cfg]:-}" "${VC_GETPID[$row/$cfg]:-}" "${VC_SHARES[$row/$cfg]:-}")"
    done
  done
}
if [ $vcpus = 1 ]; then
  if [ -z "$vcpu_mode" ] || [ -n "${NA[$vcpu_mode]:-}" ]; then
    note "virtual-CPU rows not measured: no usable umlmicro mode"
    vcpus=0
  else
    run_vcpus
  fi
fi
t_total=$(( $(date +%s) - t_start ))

# ---------------------------------------------------------------- tables
# A table is a header line and rows, cells separated by TABs. It is rendered as aligned
# text (first column left, the others right) and as Markdown.
render_text() {
  awk -F'\t' '{for (i = 1; i <= NF; i++) {c[NR, i] = $i; if (length($i) > w[i]) w[i] = length($i)}
               if (NF > nf) nf = NF}
    END {for (r = 1; r <= NR; r++) {line = ""
           for (i = 1; i <= nf; i++) line = line sprintf(i == 1 ? "%-" w[i] "s" : "  %" w[i] "s", c[r, i])
           print line
           if (r == 1) {line = ""; for (i = 1; i <= nf; i++) {d = sprintf("%" w[i] "s", ""); gsub(/ /, "-", d); line = line (i == 1 ? d : "  " d)}; print line}}}'
}
render_md() {
  awk -F'\t' '{line = "|"; for (i = 1; i <= NF; i++) line = line " " $i " |"; print line
    if (NR == 1) {line = "|"; for (i = 1; i <= NF; i++) line = line (i == 1 ? "---|" : "---:|"); print line}}'
}
label() { case $1 in native|strace|proot) echo "$1" ;; *) echo "umlmicro $1" ;; esac; }

ops_table() {
  local h="op" cfg op row
  for cfg in "${cfgs[@]}"; do
    h+=$'\t'"$(label "$cfg") ns/op"
    [ "$cfg" = native ] || h+=$'\t'"$cfg x native"
  done
  echo "$h"
  for op in "${ops_list[@]}"; do
    row=$op
    for cfg in "${cfgs[@]}"; do
      row+=$'\t'"$(fmt_ns "${NS[$cfg/$op]:-}")"
      [ "$cfg" = native ] || row+=$'\t'"$(fmt_ratio "${NS[$cfg/$op]:-}" "${NS[native/$op]:-}")"
    done
    echo "$row"
  done
}

lat_table() {
  local h="op" cfg op row
  for cfg in "${cfgs[@]}"; do h+=$'\t'"$(label "$cfg") p50 / p99"; done
  echo "$h"
  for op in "${ops_list[@]}"; do
    row=$op
    for cfg in "${cfgs[@]}"; do
      if [ -n "${P50[$cfg/$op]:-}" ]; then row+=$'\t'"${P50[$cfg/$op]} / ${P99[$cfg/$op]}"
      else row+=$'\t'"n/a"; fi
    done
    echo "$row"
  done
}

floor_table() {
  local m nat=${FL[native/same]:-}
  printf 'floor (getppid in a loop)\tstops/call\tsame CPU ns\tx native\tsplit CPUs ns\tunpinned ns\n'
  for m in native tt sysemu seccomp; do
    case $m in
      native) printf 'native, no tracer\t0' ;;
      tt) printf 'tt: PTRACE_SYSCALL + GETREGS at each stop\t2' ;;
      sysemu) printf 'sysemu: PTRACE_SYSEMU + GETREGS/SETREGS\t1' ;;
      seccomp) printf 'seccomp: RET_TRACE + GETREGS/SETREGS\t1' ;;
    esac
    printf '\t%s\t%s\t%s\t%s\n' "$(fmt_ns "${FL[$m/same]:-}")" "$(fmt_ratio "${FL[$m/same]:-}" "$nat")" \
      "$(fmt_ns "${FL[$m/split]:-}")" "$(fmt_ns "${FL[$m/none]:-}")"
  done
}

# target ROW-LABEL MODE MEASURED LIMIT KIND: one row of the targets table.
# KIND ratio: MEASURED/BASE must be <= LIMIT; KIND abs: MEASURED (ns) must be < LIMIT (ns).
target_row() {
  local what=$1 mode=$2 val=$3 base=$4 limit=$5 kind=$6 meas verdict
  if ! printf '%s\n' "${mode_cfgs[@]}" | grep -qx -- "$mode"; then
    printf '%s\t%s\tn/a\t%s\tn/a (mode not run)\n' "$what" "$mode" "$(lim_txt "$limit" "$kind")"; return
  fi
  if [ -n "${NA[$mode]:-}" ]; then
    printf '%s\t%s\tn/a\t%s\tn/a (mode not available)\n' "$what" "$mode" "$(lim_txt "$limit" "$kind")"; return
  fi
  if [ -z "$val" ] || { [ "$kind" = ratio ] && [ -z "$base" ]; }; then
    printf '%s\t%s\tn/a\t%s\tn/a (not measured)\n' "$what" "$mode" "$(lim_txt "$limit" "$kind")"; return
  fi
  if [ "$kind" = ratio ]; then
    meas=$(fmt_ratio "$val" "$base")
    verdict=$(awk -v a="$val" -v b="$base" -v l="$limit" 'BEGIN {r = a / b / l; if (r <= 1) print "met"; else printf "missed (%.1fx over)", r}')
  else
    meas=$(awk -v a="$val" 'BEGIN {printf "%.1f us", a / 1000}')
    verdict=$(awk -v a="$val" -v l="$limit" 'BEGIN {r = a / l; if (r < 1) print "met"; else printf "missed (%.1fx over)", r}')
  fi
  printf '%s\t%s\t%s\t%s\t%s\n' "$what" "$mode" "$meas" "$(lim_txt "$limit" "$kind")" "$verdict"
}
vcpu_label() {
  case $1 in
    native) echo "native (host's $(nproc) CPUs)" ;;
    one-cpu) echo "native, taskset -c 0" ;;
    strace) echo "strace -f" ;;
    default) echo "umlmicro $vcpu_mode (--cpus $(nproc))" ;;
    cpus1) echo "umlmicro $vcpu_mode --cpus 1 (round-robin)" ;;
    cpus1-fifo) echo "umlmicro $vcpu_mode --cpus 1, Sched:Policy=fifo" ;;
    cpus1-fair) echo "umlmicro $vcpu_mode --cpus 1, Sched:Policy=fair-share" ;;
  esac
}
vcpu_share_table() {
  local cfg
  printf 'two spinners, nice 0 and nice 5	run	shares %%
'
  for cfg in $(vcpu_cfgs_of share); do
    printf '%s	%s	%s
' "$share_ms ms" "$(vcpu_label "$cfg")" "${VC_SHARES[share/$cfg]:-n/a}"
  done
}
vcpu_table() {
  local row cfg base
  printf 'threads\trun\twall ms\tx native\tfirst done at %% of wall\tall progressed\n'
  for row in spin1 spin2 spin4; do
    for cfg in $(vcpu_cfgs_of "$row"); do
      base=native; [[ $cfg == cpus1* ]] && base=one-cpu
      printf '%s\t%s\t%s\t%s\t%s\t%s\n' "${row#spin} spinning" "$(vcpu_label "$cfg")" "${VC_MS[$row/$cfg]:-n/a}" \
        "$([ "$cfg" = native ] && echo "" || fmt_ratio "${VC_MS[$row/$cfg]:-}" "${VC_MS[$row/$base]:-}")$([ "$base" = one-cpu ] && [ "$cfg" != one-cpu ] && echo ' (of one CPU)')" \
        "${VC_FIRST[$row/$cfg]:-n/a}" "${VC_ALL[$row/$cfg]:-n/a}"
    done
  done
}
vcpu_mixed_table() {
  local cfg
  printf 'a getpid loop\trun\tspinner wall ms\tspinner x native\tgetpid ns\tx the loop alone\n'
  for cfg in $(vcpu_cfgs_of getpid); do
    printf '%s\t%s\t\t\t%s\t\n' "alone" "$(vcpu_label "$cfg")" "${VC_GETPID[getpid/$cfg]:-n/a}"
  done
  for cfg in $(vcpu_cfgs_of mixed); do
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "beside a spinning thread" "$(vcpu_label "$cfg")" "${VC_MS[mixed/$cfg]:-n/a}" \
      "$([ "$cfg" = native ] && echo "" || fmt_ratio "${VC_MS[mixed/$cfg]:-}" "${VC_MS[mixed/native]:-}")" \
      "${VC_GETPID[mixed/$cfg]:-n/a}" "$(fmt_ratio "${VC_GETPID[mixed/$cfg]:-}" "${VC_GETPID[getpid/$cfg]:-}")"
  done
  for cfg in $(vcpu_cfgs_of pair); do
    printf '%s\t%s\t\t\t%s\t%s\n' "two processes, each a loop" "$(vcpu_label "$cfg")" \
      "${VC_GETPID[pair/$cfg]:-n/a}" "$(fmt_ratio "${VC_GETPID[pair/$cfg]:-}" "${VC_GETPID[getpid/$cfg]:-}")"
  done
}
startup_table() {
  local cfg
  printf 'run /bin/true\twall ms\twall x native\tCPU ms\tCPU x native\n'
  for cfg in "${cfgs[@]}"; do
    printf '%s\t%s\t%s\t%s\t%s\n' "$(label "$cfg")" "${SU_WALL[$cfg]:-n/a}" "$(fmt_ratio "${SU_WALL[$cfg]:-}" "${SU_WALL[native]:-}")" \
      "${SU_CPU[$cfg]:-n/a}" "$(fmt_ratio "${SU_CPU[$cfg]:-}" "${SU_CPU[native]:-}")"
  done
}
rpc_table() {
  local srv cfg
  printf 'server\tCPUs\twarm p50 us\twarm mean us\twarm p99 us\tfirst us\tcold ms\n'
  for srv in Vfs Mm Sched; do
    for cfg in "${rt_cfgs[@]}"; do
      printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$srv" "$cfg" "${RT[$srv/$cfg/p50_us]:-n/a}" "${RT[$srv/$cfg/mean_us]:-n/a}" \
        "${RT[$srv/$cfg/p99_us]:-n/a}" "${RT[$srv/$cfg/first_us]:-n/a}" \
        "$([ -n "${RT[$srv/$cfg/cold_us]:-}" ] && awk -v x="${RT[$srv/$cfg/cold_us]}" 'BEGIN {printf "%.0f", x / 1000}' || echo n/a)"
    done
  done
}
deep_table() {
  local cfg
  printf 'cd down %s directories\twall ms\tx native\n' "$deep_levels"
  for cfg in "${cfgs[@]}"; do
    printf '%s\t%s\t%s\n' "$(label "$cfg")" "${DP_MS[$cfg]:-n/a}" "$(fmt_ratio "${DP_MS[$cfg]:-}" "${DP_MS[native]:-}")"
  done
}
macro_table() {
  printf 'conformance suite, every case once\ts\tx native\n'
  printf '%s\t%s\t%s\n' "$(label native)" "${MC_S[native]:-n/a}" ""
  printf '%s\t%s\t%s\n' "$(label "$macro_mode")" "${MC_S[$macro_mode]:-n/a}" "$(fmt_ratio "${MC_S[$macro_mode]:-}" "${MC_S[native]:-}")"
}
lim_txt() { if [ "$2" = ratio ]; then echo "<= ${1}x"; else awk -v l="$1" 'BEGIN {printf "< %g us", l / 1000}'; fi; }

targets_table() {
  local m
  printf 'target (issue 6)\tmode\tmeasured\tlimit\tverdict\n'
  target_row "write-devnull (passed) vs native" seccomp "${NS[seccomp/write-devnull]:-}" "${NS[native/write-devnull]:-}" 1.5 ratio
  target_row "write-devnull (passed) vs 2-stop floor, same CPU" tt "${NS[tt/write-devnull]:-}" "${FL[tt/same]:-}" 1.3 ratio
  target_row "getpid (no server) vs 1-stop floor, same CPU" sysemu "${NS[sysemu/getpid]:-}" "${FL[sysemu/same]:-}" 1.3 ratio
  target_row "getpid (no server) vs 1-stop floor, same CPU" seccomp "${NS[seccomp/getpid]:-}" "${FL[seccomp/same]:-}" 1.3 ratio
  for m in tt sysemu seccomp; do
    target_row "stat (server call) p50" "$m" "${P50[$m/stat]:-}" "" 100000 abs
  done
  for m in tt sysemu seccomp; do
    target_row "fork-wait vs native" "$m" "${NS[$m/fork-wait]:-}" "${NS[native/fork-wait]:-}" 3 ratio
    target_row "exec-true vs native" "$m" "${NS[$m/exec-true]:-}" "${NS[native/exec-true]:-}" 3 ratio
  done
}

case $pin in
  peers) pin_txt="strace and proot run under taskset -c $pin_cpu (tracer and tracee on one CPU); native and umlmicro are not pinned by the benchmark (umlmicro applies its own policy)" ;;
  all) pin_txt="native, umlmicro (supervisor, servers and guest) and the peers all run under taskset -c $pin_cpu" ;;
  none) pin_txt="nothing is pinned by the benchmark" ;;
esac
floor_pin_txt="the floor pins itself: 'same CPU' = tracer and tracee on CPU $pin_cpu, 'split CPUs' = on two different CPUs, 'unpinned' = wherever the scheduler puts them"

# ---------------------------------------------------------------- print
{
  echo
  echo "ns per operation (median of $reps repetitions of ~$rep_ms ms, timed inside the guest: startup excluded)"
  ops_table | render_text
  echo
  echo "latency of one operation, p50 / p99 ns"
  lat_table | render_text
  if [ $floor = 1 ]; then
    echo
    echo "raw ptrace floor, ns per traced getppid (median of $floor_reps runs)"
    floor_table | render_text
  fi
  if [ $startup = 1 ]; then
    echo
    echo "startup: /bin/true as a whole, wall and CPU of every process it started (median of $reps runs)"
    startup_table | render_text
  fi
  if [ $rpc = 1 ]; then
    echo
    echo "round trip: a bare request (hello) to each server, as the supervisor sends one (median of $reps runs)"
    rpc_table | render_text
  fi
  if [ $deep = 1 ]; then
    echo
    echo "deep path: a shell cd's down $deep_levels nested directories (median wall of $reps runs, startup included)"
    deep_table | render_text
  fi
  if [ $macro = 1 ] && [ -n "${MC_S[native]:-}" ]; then
    echo
    echo "macro: the conformance suite's total time (${MC_S[cases]:-})"
    macro_table | render_text
  fi
  if [ $vcpus = 1 ]; then
    echo
    echo "virtual CPUs: bench/spin.c, threads of $spin_iterations iterations each (median of $reps interleaved runs)"
    vcpu_table | render_text
    echo
    vcpu_mixed_table | render_text
    echo
    vcpu_share_table | render_text
  fi
  echo
  targets_table | render_text
  echo
  echo "pinning: $pin_txt; $floor_pin_txt."
  echo "load average before the run: $load_before; measuring took ${t_total}s"
  if [ ${#notes[@]} -gt 0 ]; then
    echo "notes:"
    printf '  - %s\n' "${notes[@]}"
  fi
}

# ---------------------------------------------------------------- RESULTS.md
if [ $write_results = 1 ]; then
  cpu_model=$(awk -F': *' '/^model name/ {print $2; exit}' /proc/cpuinfo)
  commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
  if [ -n "$(git -C "$root" status --porcelain --untracked-files=no 2>/dev/null | grep -v ' bench/' || true)" ]; then
    commit+=" (with uncommitted changes)"
  fi
  clocksource=$(cat /sys/devices/system/clocksource/clocksource0/current_clocksource 2>/dev/null || echo unknown)
  tmp=$(mktemp "${results}.XXXXXX")
  {
    echo "<!-- Generated by bench/run.sh. Do not edit by hand: run bench/run.sh to regenerate. -->"
    echo "# UmlMicro benchmark results"
    echo
    echo "Generated by \`bench/run.sh\` — do not edit by hand; rerun the benchmark to update it."
    echo "See [README.md](README.md) for what each row means."
    echo
    echo "- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo "- command: \`$cmdline\`"
    echo "- machine: nproc $(nproc), kernel $(uname -r), CPU ${cpu_model:-unknown}, clocksource $clocksource"
    echo "- load average before the run: $load_before (other work on the machine makes the numbers noisier)"
    uml_shown=$UMLMICRO
    case $uml_shown in "$root"/*) uml_shown=./${uml_shown#"$root"/} ;; esac
    echo "- umlmicro: \`$uml_shown\`, commit $commit; modes: ${modes[*]}"
    echo "- pinning: $pin_txt; $floor_pin_txt."
    echo "- method: each cell is the median of $reps repetitions of about $rep_ms ms, timed by the program itself with clock_gettime (vDSO), so the supervisor's startup is not included. Ratios are to the native column."
    echo
    echo "## ns per operation"
    echo
    ops_table | render_md
    echo
    echo "## Latency of one operation: p50 / p99 (ns)"
    echo
    echo "Each sample includes one clock_gettime call (about 20–30 ns)."
    echo
    lat_table | render_md
    if [ $floor = 1 ]; then
      echo
      echo "## Raw ptrace floor (ns per traced getppid)"
      echo
      echo "A minimal C tracer (bench/ptrace_floor.c); median of $floor_reps runs. x native is against the native row, same CPU."
      echo
      floor_table | render_md
    fi
    if [ $startup = 1 ]; then
      echo
      echo "## Startup: \`run -- /bin/true\` as a whole"
      echo
      echo "Each run a fresh process, from exec to exit; wall time, and CPU time (user + system) of every process it started and waited for (for umlmicro: the supervisor, its three servers, the launcher and the guest). Median of $reps runs."
      echo
      startup_table | render_md
    fi
    if [ $rpc = 1 ]; then
      echo
      echo "## Round trip: a bare request to each server"
      echo
      echo "\`bench/rpcping\` starts the server of \`build/Release\` itself, over its stdin and stdout, and times \`hello\` (answered with no work) as the supervisor sends requests: synchronously, one at a time. Cold: from the process's start to its first answer; first: the next request; warm: 5,000 more. The run with the median warm mean of $reps; 'one-cpu' pins rpcping and the server to CPU $pin_cpu."
      echo
      rpc_table | render_md
    fi
    if [ $deep = 1 ]; then
      echo
      echo "## Deep path: \`cd\` down $deep_levels nested directories"
      echo
      echo "A shell (\`/bin/sh\`, dash) cd's one level down at a time; dash hands chdir the whole path each time, so each level is a longer path to resolve. Wall time of the whole run, startup included; median of $reps runs."
      echo
      deep_table | render_md
    fi
    if [ $macro = 1 ] && [ -n "${MC_S[native]:-}" ]; then
      echo
      echo "## Macro: the conformance suite"
      echo
      echo "\`../shared/conformance/run.sh\` runs every case natively and under a prefix. Native: half of a run with an empty prefix (both runs native); under $macro_mode: a run with the umlmicro prefix less that half. One run each; ${MC_S[cases]:-}."
      echo
      macro_table | render_md
    fi
    if [ $vcpus = 1 ]; then
      echo
      echo "## Virtual CPUs: CPU-bound threads"
      echo
      echo "bench/spin.c: N threads of $spin_iterations iterations each, no syscalls; median wall time of $reps runs, interleaved (each configuration once per round). Native and the default \`--cpus\` (the host's count) are compared with native; \`--cpus 1\` with native on one CPU (\`taskset -c 0\`). With round-robin every thread progresses (the first finishes near 100% of the wall time); with fifo one runs to its end first."
      echo
      vcpu_table | render_md
      echo
      echo "A getpid loop ($getpid_count calls) alone; beside a spinning thread of its process (until the spinner is done), where the spinner should run at native speed and the loop at its own; and in two processes at once (\`sh -c 'spin getpid N & spin getpid N; wait'\`), where one tracer serves both loops, as strace's does."
      echo
      vcpu_mixed_table | render_md
      echo
      echo "Shares on one CPU (\`spin share $share_ms 0 5\`): two CPU-bound threads at nice 0 and nice 5, each one's part of the work done (median run by the first share). Linux's CFS gives them about 75 and 25 (load weights 1024 and 335); Sched's round-robin scales its quantum by the same weights, and its fair-share policy counts CPU time weighted by them."
      echo
      vcpu_share_table | render_md
    fi
    echo
    echo "## Targets from issue 6"
    echo
    targets_table | render_md
    if [ ${#notes[@]} -gt 0 ]; then
      echo
      echo "## Notes"
      echo
      printf -- '- %s\n' "${notes[@]}"
    fi
  } >"$tmp"
  mv -f "$tmp" "$results"
  say "wrote ${results#"$root"/}"
fi
