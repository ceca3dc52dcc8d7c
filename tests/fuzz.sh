#!/usr/bin/env bash
# tests/fuzz.sh SEED COUNT [UMLMICRO OPTIONS...]: COUNT random syscalls (tests/fixtures/syscall_fuzz.c, SEED
# fixed so a failure can be replayed) as a guest of umlmicro, in a scratch directory that is removed afterwards.
# Passes (exit 0) when the guest ran to its end, its last routed calls worked, the kernel reported no failure and
# no server had to be restarted.
#   tests/fuzz.sh 1 100000                 # a long run in the default mode
#   tests/fuzz.sh 7 20000 --mode sysemu    # another seed, another trap path
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: tests/fuzz.sh SEED COUNT [UMLMICRO OPTIONS...]" >&2
  exit 2
fi
seed=$1 count=$2
shift 2
here=$(cd -- "$(dirname -- "$(readlink -f -- "${BASH_SOURCE[0]}")")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
gcc -O2 -Wall -o "$work/syscall_fuzz" "$here/tests/fixtures/syscall_fuzz.c"
mkdir "$work/cwd"
cd "$work/cwd"
set +e
"$here/umlmicro" run --stats "$@" -- "$work/syscall_fuzz" "$seed" "$count" >"$work/out" 2>"$work/err"
status=$?
set -e
cat "$work/out"
# --stats lists server restarts: a server that crashed or hung and was brought back is a failure too.
if [ "$status" -ne 0 ] || grep -q "kernel failure" "$work/err" || ! grep -q "^server restarts: 0," "$work/err" ||
   ! grep -q "^fuzz done: stat ok" "$work/out"; then
  cat "$work/err" >&2
  echo "fuzz: FAILED (seed $seed, $count calls, umlmicro exit status $status)" >&2
  exit 1
fi
echo "fuzz: passed (seed $seed, $count calls)"
