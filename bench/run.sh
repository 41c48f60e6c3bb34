#!/usr/bin/env bash
# Run the benchmarks by hand: `make bench` (which puts the venv's bin first on PATH) or
# `bash bench/run.sh`. Builds a console log in $TMPDIR (never in the repo: it is 128 MiB),
# runs bench_analyze.py on it and bench_stream_latency.py on the real captures, then deletes it.
#   BENCH_SIZE_MB (default 128)  BENCH_SEED (default 1)  BENCH_REPEAT (default 3)
# Exits non-zero when a benchmark's crash check failed, after running all of them.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"
size_mb="${BENCH_SIZE_MB:-128}"
seed="${BENCH_SEED:-1}"
repeat="${BENCH_REPEAT:-3}"

# The interpreter that has crashcart: the one on PATH under `make bench`, else the repo's venv.
python="${PYTHON:-python}"
if ! "$python" -c 'import crashcart' 2>/dev/null; then
  python="$repo/.venv/bin/python"
fi
if ! "$python" -c 'import crashcart' 2>/dev/null; then
  echo "bench: no Python with crashcart installed; run \`make venv\` first" >&2
  exit 2
fi

log="$(mktemp "${TMPDIR:-/tmp}/crashcart-bench.XXXXXX")"
cleanup() { rm -f "$log" "$log.manifest.json"; }
trap cleanup EXIT
trap 'exit 130' INT TERM  # the EXIT trap still removes the log

echo "== crashcart bench $(date '+%Y-%m-%d %H:%M %z')"
echo "   $(git -C "$repo" describe --always --dirty 2>/dev/null || echo 'no git'), $(nproc) CPUs," \
  "$(uname -sr), $("$python" -V 2>&1)"
echo "== make_console_log.py ${size_mb} MiB, seed ${seed}"
"$python" "$here/make_console_log.py" "$log" --size-mb "$size_mb" --seed "$seed"

status=0
echo "== bench_analyze.py"
"$python" "$here/bench_analyze.py" "$log" --repeat "$repeat" || status=$?
echo "== bench_stream_latency.py"
"$python" "$here/bench_stream_latency.py" || status=$?
echo "== bench_watch.py"
"$python" "$here/bench_watch.py" || status=$?
exit "$status"
