#!/usr/bin/env bash
# End to end for BERT text: (1) `heed tokenize` gives exactly the ids of
# scripts/wordpiece_ref.py (HF's algorithm on Python's unicodedata) on a
# text with punctuation, accents, CJK, unknown and long words; (2) a TSV
# of (text, label) pairs becomes a valid dataset (heed inspect); (3)
# bert_mlm and bert train on it at 2 ranks with identical parameters on
# both (--check-sync) and print a test accuracy.
set -euo pipefail
heed=$1
work=$2
rm -rf "$work"
mkdir -p "$work"
vocab=tests/fixtures/bert_vocab.txt
long=$(printf 'a%.0s' $(seq 1 120))
# shellcheck disable=SC1111 # the curly quotes are test input
cat > "$work/text.txt" <<TXT
Hello, World! The cat sat on the mat.
Café naïve ÉLAN résumé Zürich Ångström
unaffable running runs xyzzy $long
我是猫。 hello我world ¿Qué? “hello” — world
don't  stop	the cat-mat!!
TXT
"$heed" tokenize --vocab "$vocab" --max-len 512 < "$work/text.txt" > "$work/heed.ids"
# the reference prints the pieces' ids; heed adds [CLS] (3) and [SEP] (4)
/usr/bin/python3 scripts/wordpiece_ref.py --vocab "$vocab" < "$work/text.txt" |
  awk '{ printf "3 %s%s4\n", $0, (NF ? " " : "") }' > "$work/ref.ids"
diff "$work/ref.ids" "$work/heed.ids" || { echo "FAIL: heed tokenize differs from the reference"; exit 1; }

: > "$work/train.tsv"
words=(the cat sat on mat hello world dog run a b cafe naive)
for i in $(seq 0 199); do
  w1=${words[$((i % 13))]} w2=${words[$(((i * 7) % 13))]} w3=${words[$(((i * 3 + 1) % 13))]}
  printf '%s %s %s .\t%s\n' "$w1" "$w2" "$w3" "c$((i % 3))" >> "$work/train.tsv"
done
head -40 "$work/train.tsv" > "$work/val.tsv"
tail -40 "$work/train.tsv" > "$work/test.tsv"
/usr/bin/python3 scripts/prepare_text_bert.py --vocab "$vocab" --train "$work/train.tsv" \
  --val "$work/val.tsv" --test "$work/test.tsv" --max-len 12 --out "$work/text.h5" --heed "$heed"
"$heed" inspect "$work/text.h5" > "$work/inspect.txt"

flags=(--oversubscribe)
[ "$(id -u)" = 0 ] && flags+=(--allow-run-as-root)
# bert with class weights (--class-balance; ranks must still agree)
for m in bert_mlm bert; do
  extra=()
  [ $m = bert ] && extra=(--class-balance 1)
  mpirun "${flags[@]}" -n 2 "$heed" train --model $m --data "$work/text.h5" --out "$work/$m" \
    --steps 20 --batch-size 16 --lr 1e-3 --warmup 5 --dim 32 --depth 1 --heads 2 --ffn 64 \
    --dropout 0.1 --threads 1 --check-sync "${extra[@]}" | tee "$work/$m.txt"
  grep -q '^test accuracy: ' "$work/$m.txt" || { echo "FAIL: $m printed no test accuracy"; exit 1; }
done

grep -q 'class weights (--class-balance 1): ' "$work/bert.txt" ||
  { echo "FAIL: bert --class-balance 1 printed no class weights"; exit 1; }
# MLM has no classes to weigh: refused, exit 2 on all ranks
rc=0
out=$(mpirun "${flags[@]}" -n 2 "$heed" train --model bert_mlm --data "$work/text.h5" \
  --out "$work/mlm_cb" --steps 1 --batch-size 16 --dim 32 --depth 1 --heads 2 --ffn 64 \
  --class-balance 1 2>&1) || rc=$?
[ "$rc" = 2 ] && grep -q -- '--class-balance weighs the classes' <<<"$out" ||
  { echo "FAIL: bert_mlm --class-balance: exit $rc, output: $out"; exit 1; }

# fine-tuning from the pretraining run: its final checkpoint, exported, and
# the checkpoint itself both initialise bert (the head starts fresh)
ckpt=$(find "$work/bert_mlm/checkpoints" -mindepth 1 -maxdepth 1 -name "*.h5" | sort | tail -n 1)
[ -n "$ckpt" ] || { echo "FAIL: bert_mlm wrote no checkpoint"; exit 1; }
"$heed" export "$ckpt" --out "$work/mlm_params.h5"
for init in "$work/mlm_params.h5" "$ckpt"; do
  mpirun "${flags[@]}" -n 2 "$heed" train --model bert --data "$work/text.h5" --out "$work/ft" \
    --steps 10 --batch-size 16 --lr 1e-3 --dim 32 --depth 1 --heads 2 --ffn 64 --threads 1 \
    --init-from "$init" | tee "$work/ft.txt"
  grep -q -- '--init-from .*: 23 tensors loaded, 2 kept initial (first: head.weight), 5 in the file unused' "$work/ft.txt" ||
    { echo "FAIL: --init-from did not load the trunk"; exit 1; }
done
# a file for another model is refused with exit 2
set +e
"$heed" train --model bert --data "$work/text.h5" --out "$work/bad" --steps 1 --dim 16 \
  --depth 1 --heads 2 --init-from "$work/mlm_params.h5" > "$work/bad.txt" 2>&1
code=$?
set -e
[ "$code" = 2 ] || { echo "FAIL: a mismatched --init-from exited $code, not 2"; exit 1; }
grep -q "shape" "$work/bad.txt" || { echo "FAIL: no shape message"; cat "$work/bad.txt"; exit 1; }
echo "OK"
