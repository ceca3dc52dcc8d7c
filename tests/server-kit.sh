#!/usr/bin/env bash
# The conformance kit for servers: runs the contract tests (tests/Contract.Tests) against any server command line.
#
#   tests/server-kit.sh vfs|mm|sched 'COMMAND LINE'
#   e.g. tests/server-kit.sh sched 'python3 my_sched.py --verbose'
#
# COMMAND LINE is run by /bin/sh for every test (each test starts a fresh server, some two); it speaks the contract
# of docs/contract on its stdin and stdout. Needs only the .NET SDK. The tests come in two kinds, reported apart:
#   wire       framing, malformed input, required fields, method names, hello: what any server must get right first;
#   semantics  what the methods mean (pids, the process tree, mappings, paths, checkpoints), docs/contract.
# Ends with a summary; exit status 0 when every test passed, 1 when any failed, 2 for a usage or build error.
set -uo pipefail
usage() { echo "usage: tests/server-kit.sh vfs|mm|sched 'COMMAND LINE'" >&2; exit 2; }
[ $# -eq 2 ] || usage
server=$1 command=$2
case $server in vfs|mm|sched) ;; *) usage ;; esac
[ -n "$command" ] || usage
# The command line runs where the kit was started, so a relative path in it means what the caller meant.
export UMLMICRO_KIT_CWD=$PWD
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "server-kit: building the contract tests"
if ! dotnet build tests/Contract.Tests -c Release -nologo -v q >"$work/build.log" 2>&1; then
  cat "$work/build.log" >&2
  echo "server-kit: the contract tests did not build" >&2
  exit 2
fi

upper=$(tr '[:lower:]' '[:upper:]' <<<"$server")
export "UMLMICRO_${upper}_CMD=$command" UMLMICRO_KIT_SERVER=$server

# KIND LABEL: runs that kind's tests for this server; leaves "passed failed" in $work/KIND.count and the failures'
# names in $work/KIND.failed.
run() {
  local kind=$1 label=$2
  echo "server-kit: $label tests against $server: $command"
  dotnet test tests/Contract.Tests -c Release --no-build --nologo \
    --filter "Kind=$kind&(Server=$server|Server=any)" \
    --logger "console;verbosity=normal" >"$work/$kind.log" 2>&1
  # "  Passed NAME [12 ms]" / "  Failed NAME [12 ms]", one line per test.
  grep -E '^\s+Failed [A-Za-z]' "$work/$kind.log" | sed -E 's/^\s+Failed //; s/ \[[^]]*\]$//' >"$work/$kind.failed"
  local passed failed
  passed=$(grep -cE '^\s+Passed [A-Za-z]' "$work/$kind.log")
  failed=$(wc -l <"$work/$kind.failed")
  if [ "$passed" = 0 ] && [ "$failed" = 0 ]; then
    # Nothing ran: the test host itself failed. Show why.
    cat "$work/$kind.log" >&2
    failed=1
    echo "(the test run did not start)" >"$work/$kind.failed"
  fi
  echo "$passed $failed" >"$work/$kind.count"
  if [ "$failed" != 0 ]; then
    # The failures' messages, as dotnet test gives them: the first lines of each, for the first ten.
    awk '/^\s+Failed [A-Za-z]/ { if (++shown <= 10) n = 14 } n > 0 { print; n-- }' "$work/$kind.log"
    [ "$failed" -le 10 ] || echo "  ... and $((failed - 10)) more (all named below)"
  fi
}

run Wire "wire"
run Semantics "semantics"

read -r wire_passed wire_failed <"$work/Wire.count"
read -r sem_passed sem_failed <"$work/Semantics.count"
echo
echo "== server-kit summary: $server server, $command"
printf '  wire (framing, malformed input, required fields): %3d passed, %3d failed\n' "$wire_passed" "$wire_failed"
printf '  semantics (what the methods mean):                %3d passed, %3d failed\n' "$sem_passed" "$sem_failed"
sed 's/^/  FAILED wire: /' "$work/Wire.failed"
sed 's/^/  FAILED semantics: /' "$work/Semantics.failed"
if [ "$wire_failed" = 0 ] && [ "$sem_failed" = 0 ]; then
  echo "PASS: the $server server keeps the contract (docs/contract/$server.md)"
  exit 0
fi
[ "$wire_failed" = 0 ] || echo "Fix the wire failures first: a semantics test cannot pass on a wire that fails (docs/contract/README.md)."
echo "FAIL"
exit 1
