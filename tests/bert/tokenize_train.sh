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
for m in bert_mlm bert; do
  mpirun "${flags[@]}" -n 2 "$heed" train --model $m --data "$work/text.h5" --out "$work/$m" \
    --steps 20 --batch-size 16 --lr 1e-3 --warmup 5 --dim 32 --depth 1 --heads 2 --ffn 64 \
    --dropout 0.1 --threads 1 --check-sync | tee "$work/$m.txt"
  grep -q '^test accuracy: ' "$work/$m.txt" || { echo "FAIL: $m printed no test accuracy"; exit 1; }
done
echo "OK"
