#!/usr/bin/env bash
# scripts/bench_all.sh --quick end to end: every part runs and lands in the
# report (models, all-reduce at p = 2 and 4, weak scaling with ranks that
# agree bitwise), and plot_bench.py rewrites only its block of a docs file,
# appends one where there is none, and refuses an incomplete run folder.
#
# Usage: tests/e2e/bench_all.sh BUILD_DIR WORK_DIR
set -euo pipefail
build=$1
work=$2
rm -rf "$work"
mkdir -p "$work"
fail() {
  echo "FAIL: $*" >&2
  exit 1
}

BUILD_DIR=$build bash scripts/bench_all.sh --quick --out "$work/run" >"$work/log" 2>&1 ||
  { cat "$work/log"; fail "bench_all.sh --quick failed"; }
report=$work/run/report.md
[ -s "$report" ] || fail "no report.md"
for m in vit cbam_cnn resnet20 transformer bert bilstm; do
  grep -q "^| $m | [0-9]" "$report" || fail "model $m has no row with a heed figure"
done
for b in 4K 16K 64K; do
  # bytes, then 3 columns per rank count (p = 2, p = 4), all numbers
  grep -Eq "^\| $b( \| [0-9.]+){6} \|$" "$report" || fail "all-reduce row $b incomplete"
done
grep -Eq '^- p = 2: ' "$report" || fail "no p = 2 target line"
grep -Eq '^\| 1 \| [0-9.]+ \| 100% ' "$report" || fail "no 1-rank scaling row"
grep -Eq '^\| 2 \| [0-9.]+ \| [0-9]+% .*\| yes \|$' "$report" || fail "no 2-rank scaling row with agreeing ranks"
grep -q 'Quick smoke run' "$report" || fail "a quick run is not marked as such"
if /usr/bin/python3 -c 'import matplotlib' 2>/dev/null; then
  for png in allreduce scaling models; do
    [ "$png" = models ] && ! grep -Eq '^\| vit \| [0-9.]+ \| [0-9.]+ ' "$report" && continue
    head -c 8 "$work/run/$png.png" | od -An -tx1 | grep -q '89 50 4e 47' || fail "$png.png is not a PNG"
  done
fi

# The docs block: replaced in place between the markers, text around it kept.
mkdir -p "$work/docs"
printf '# bench\n\nbefore\n\n<!-- bench_all:begin -->\nold figures\n<!-- bench_all:end -->\n\nafter\n' \
  >"$work/docs/b.md"
/usr/bin/python3 scripts/plot_bench.py "$work/run" --docs "$work/docs/b.md" >/dev/null
grep -q '^before$' "$work/docs/b.md" && grep -q '^after$' "$work/docs/b.md" || fail "text around the block lost"
grep -q 'old figures' "$work/docs/b.md" && fail "old block content kept"
grep -q '^| resnet20 | ' "$work/docs/b.md" || fail "block not written"
[ "$(grep -c 'bench_all:begin' "$work/docs/b.md")" = 1 ] || fail "markers duplicated"
# A file without the block gets one appended.
printf '# other\n' >"$work/docs/c.md"
/usr/bin/python3 scripts/plot_bench.py "$work/run" --docs "$work/docs/c.md" >/dev/null
grep -q '^# other$' "$work/docs/c.md" && grep -q 'bench_all:end' "$work/docs/c.md" || fail "block not appended"

# An incomplete run folder is refused with the missing file's name.
cp -r "$work/run" "$work/broken"
rm "$work/broken/scaling.jsonl"
if /usr/bin/python3 scripts/plot_bench.py "$work/broken" >"$work/err" 2>&1; then
  fail "plot_bench.py accepted a run folder without scaling.jsonl"
fi
grep -q 'scaling.jsonl is missing' "$work/err" || fail "unclear error: $(cat "$work/err")"
echo "bench_all quick run: OK"
