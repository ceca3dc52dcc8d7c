#!/usr/bin/env bash
# bench/ltp.sh: runs the LTP syscall selection (../shared/ltp) natively and under umlmicro in each
# trap mode, with the shared runner as its README says, then writes bench/LTP.md from the results
# (bench/ltp-report.py). LTP.md is generated: do not edit it, rerun this. See bench/README.md.
set -euo pipefail

here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
root=$(cd -- "$here/.." && pwd)
me="bench/ltp.sh"

usage() {
  cat <<EOF
usage: $me [--modes M[,M...]] [--report-only] [--results FILE]

Runs every test of the LTP selection natively, natively again with the capabilities a guest's root
holds (when run as root: the guest's bounding set, read from a guest, through setpriv), then under
'$root/umlmicro run --mode M --' for each mode, and writes the comparison to bench/LTP.md: per
mode, how many of the tests that pass natively (and natively with the guest's capabilities) pass
under umlmicro, and every exception with its reason from bench/ltp-exceptions.tsv ("unexplained"
when it has none).

options:
  --modes M[,M...]   modes to run (default: seccomp,tt,sysemu)
  --report-only      run nothing: write the report from the results already in \$LTP_BASE/results
  --results FILE     where to write the Markdown (default: bench/LTP.md)
  -h, --help         this text

environment: LTP_BASE (required: LTP built by ../shared/ltp/build.sh, see its README), LTP_RUNNER
(the runner's folder, default: ../shared/ltp beside the project), TIMEOUT (per test, the runner's).
EOF
}

modes=seccomp,tt,sysemu
run=1
results=$here/LTP.md
while [ $# -gt 0 ]; do
  case $1 in
    --modes) modes=${2:?}; shift 2;;
    --modes=*) modes=${1#*=}; shift;;
    --report-only) run=0; shift;;
    --results) results=${2:?}; shift 2;;
    --results=*) results=${1#*=}; shift;;
    -h|--help) usage; exit 0;;
    *) echo "$me: unknown option $1 (see --help)" >&2; exit 2;;
  esac
done

: "${LTP_BASE:?$me: set LTP_BASE to the LTP work directory (see ../shared/ltp/README.md)}"
export LTP_BASE
runner=${LTP_RUNNER:-$(cd -- "$root/.." && pwd)/shared/ltp}
[ -x "$runner/run.sh" ] || { echo "$me: no runner at $runner/run.sh (set LTP_RUNNER)" >&2; exit 2; }
IFS=, read -r -a mode_list <<< "$modes"
for m in "${mode_list[@]}"; do
  case $m in seccomp|tt|sysemu) ;; *) echo "$me: unknown mode $m" >&2; exit 2;; esac
done

if [ $run = 1 ]; then
  cd "$root"   # the runner's README: run from the project root (the cwd is bound writable)
  ./umlmicro run -- /bin/true   # build the kernel first, so that no test's time includes it
  echo "ltp: native" >&2
  "$runner/run.sh" native > /dev/null
  if [ "$(id -u)" = 0 ]; then
    # Root natively, less every capability a guest's root lacks (the second wall's set, as a guest sees it):
    # which failures under umlmicro are Linux's own answer to a root with those capabilities.
    bnd=$(./umlmicro run -- /bin/sh -c 'grep ^CapBnd: /proc/self/status' | awk '{print $2}')
    caps=$(python3 -c 'import sys; m = int(sys.argv[1], 16); print(",".join(f"+cap_{i}" for i in range(64) if m >> i & 1))' "$bnd")
    echo "ltp: native with the guest's capabilities ($bnd)" >&2
    LABEL=native-guest-caps "$runner/run.sh" native setpriv --inh-caps=-all --bounding-set="-all,$caps" -- > /dev/null
    echo "$bnd" > "$LTP_BASE/results/native-guest-caps/caps.txt"
  else
    rm -rf "$LTP_BASE/results/native-guest-caps"   # not root: no run with fewer capabilities to compare with
  fi
  # what ran: the report names it (a tree with changes not committed is marked)
  commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
  [ -n "$(git -C "$root" status --porcelain --untracked-files=no 2>/dev/null)" ] && commit="$commit+changes"
  for m in "${mode_list[@]}"; do
    echo "ltp: umlmicro --mode $m" >&2
    "$runner/run.sh" ./umlmicro run --mode "$m" -- > /dev/null
    echo "$commit" > "$LTP_BASE/results/umlmicro-$m/commit.txt"
  done
fi

python3 "$here/ltp-report.py" --results "$LTP_BASE/results" --selection "$runner/selection.txt" \
  --exceptions "$here/ltp-exceptions.tsv" --modes "$modes" --ltp-src "$LTP_BASE/src" > "$results"
echo "ltp: wrote $results" >&2
