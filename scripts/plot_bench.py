#!/usr/bin/python3
"""Tables and plots of one scripts/bench_all.sh run.

Reads the run folder (machine.txt, sgemm.jsonl, models.md, allreduce.md,
scaling.jsonl), writes report.md (Markdown tables, the targets of issue 11
marked met or not) and, where matplotlib is installed, allreduce.png,
scaling.png and models.png beside it. With --docs FILE it also copies the
plots to docs/images/bench_*.png and replaces the block between
"<!-- bench_all:begin -->" and "<!-- bench_all:end -->" in FILE with the
report (appending the block when FILE has none).

  /usr/bin/python3 scripts/plot_bench.py runs/bench-20261203-140000 --docs docs/benchmarks.md
"""
import argparse
import json
import os
import re
import shutil
import sys

BEGIN, END = "<!-- bench_all:begin -->", "<!-- bench_all:end -->"


def fail(msg):
    sys.exit(f"plot_bench.py: {msg}")


def read_text(run, name):
    path = os.path.join(run, name)
    if not os.path.isfile(path):
        fail(f"{path} is missing: was the run folder written by scripts/bench_all.sh?")
    with open(path) as f:
        return f.read()


def table_rows(text):
    """Data rows of the Markdown tables in text, as lists of cell strings."""
    rows = []
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("|") or re.match(r"^\|[-:| ]+\|$", line):
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows.append(cells)
    return rows


def number(s):
    try:
        return float(s.rstrip("x%"))
    except ValueError:
        return None


def parse_machine(run):
    out = {}
    for line in read_text(run, "machine.txt").splitlines():
        k, _, v = line.partition(":")
        out[k.strip()] = v.strip()
    return out


def parse_sgemm(run):
    peak = None
    for line in read_text(run, "sgemm.jsonl").splitlines():
        if line.startswith("{"):
            r = json.loads(line)
            peak = r.get("sgemm_peak_gflops", peak)
    if peak is None:
        fail("sgemm.jsonl has no sgemm_peak_gflops line")
    return peak


def parse_models(run):
    models = []
    for cells in table_rows(read_text(run, "models.md")):
        if len(cells) != 8 or cells[0] == "model":
            continue
        models.append(dict(model=cells[0], heed=number(cells[2]), torch=number(cells[3]),
                           ratio=number(cells[4]), gflop_step=cells[5], gflops=cells[6],
                           share=cells[7]))
    if not models:
        fail("models.md holds no model rows")
    return models


def parse_allreduce(run):
    """{p: {"rows": [(bytes, heed_busbw, mpi_busbw, ratio)], "memcpy": GB/s per rank}}"""
    out, p = {}, None
    for line in read_text(run, "allreduce.md").splitlines():
        m = re.match(r"^### p = (\d+)", line)
        if m:
            p = int(m.group(1))
            out[p] = {"rows": [], "memcpy": None}
            continue
        m = re.search(r"memcpy of .* at once: ([0-9.]+) GB/s per rank", line)
        if m and p is not None:
            out[p]["memcpy"] = float(m.group(1))
        for cells in table_rows(line):
            if p is None or len(cells) != 8 or cells[0] == "bytes":
                continue
            out[p]["rows"].append((int(cells[0]), float(cells[3]), float(cells[6]),
                                   float(cells[7])))
    if not any(v["rows"] for v in out.values()):
        fail("allreduce.md holds no measurements")
    return out


def scaling_rows(runs):
    """One row per rank count from bench_scaling's JSON objects (overlap on,
    off, and independent copies). Efficiencies are None without a 1-rank
    run; scripts/bench_scaling.sh prints its table from these rows too."""
    by = {(r["ranks"], r["overlap"], r.get("independent", 0)): r for r in runs}
    base = by.get((1, 1, 0))
    rows = []
    for p in sorted({r["ranks"] for r in runs}):
        on, off, ind = by.get((p, 1, 0)), by.get((p, 0, 0)), by.get((p, 1, 1))
        if not on:
            continue
        per_core = p * base["samples_per_s"] if base else None
        alone = on["reduce_alone_ms"]
        # The last rank out of backward waits for no one's backward: its
        # wait is the communication left exposed (older runs lack it).
        exposed = on.get("exposed_ms", on["wait_ms"])
        hidden = 1 - min(exposed, alone) / alone if p > 1 and alone > 0 else None
        rows.append(dict(p=p, sps=on["samples_per_s"],
                         eff=on["samples_per_s"] / per_core if per_core else None,
                         step=on["step_s"], alone=alone, wait_on=on["wait_ms"],
                         wait_off=off["wait_ms"] if off else None,
                         step_off=off["step_s"] if off else None, hook=on["hook_ms"],
                         exposed=exposed, hidden=hidden,
                         ind_sps=ind["samples_per_s"] if ind else None,
                         ind_eff=ind["samples_per_s"] / per_core if ind and per_core else None,
                         agree=on["params_agree"] and (not off or off["params_agree"])))
    return rows


def parse_scaling(run):
    runs = [json.loads(l) for l in read_text(run, "scaling.jsonl").splitlines()
            if l.startswith("{")]
    if not any(r["ranks"] == 1 and r["overlap"] == 1 and not r.get("independent", 0)
               for r in runs):
        fail("scaling.jsonl has no 1-rank run")
    return scaling_rows(runs)


def met(ok):
    return "met" if ok else "**not met**"


def table_head(L, intro, columns, align):
    """Appends a blank line, the intro, a blank line and a Markdown table
    header; align is "l" or "r" per column, comma-separated."""
    L += ["", intro, "", "| " + " | ".join(columns) + " |",
          "|" + "".join("---|" if a == "l" else "---:|" for a in align.split(","))]


def report(machine, peak, models, ar, scaling, images):
    L = []
    L.append(f"Generated by `scripts/bench_all.sh` on {machine.get('date', '?')} "
             f"(commit {machine.get('commit', '?')}): {machine.get('cpu', '?')}, "
             f"{machine.get('cores', '?')} cores, OpenBLAS core {machine.get('openblas', '?')} "
             f"(OPENBLAS_CORETYPE {machine.get('OPENBLAS_CORETYPE', 'unset')}). "
             f"sgemm peak at 1 thread: **{peak:.1f} GFLOP/s**.")
    if machine.get("quick") == "1":
        L.append("")
        L.append("**Quick smoke run: tiny sizes, the figures mean nothing.**")
    table_head(L, "Training step, 1 thread, heed and PyTorch in the same run (target: heed >= "
               "1.5x):", ["model", "heed samples/s", "PyTorch samples/s", "heed / PyTorch",
                          "target 1.5x", "GFLOP/step", "heed GFLOP/s", "share of sgemm peak"],
               "l,r,r,r,l,r,r,r")
    for m in models:
        ratio = f"{m['ratio']:.2f}x" if m["ratio"] is not None else "-"
        target = met(m["ratio"] >= 1.5) if m["ratio"] is not None else "-"
        torch = f"{m['torch']:.1f}" if m["torch"] is not None else "-"
        L.append(f"| {m['model']} | {m['heed']:.1f} | {torch} | {ratio} | {target} | "
                 f"{m['gflop_step']} | {m['gflops']} | {m['share']} |")
    ps = sorted(ar)
    table_head(L, "All-reduce, float32 sum in place, busbw in GB/s (targets: >= 1.2x "
               "MPI_Allreduce from 1 MB up, >= 3x at 64 MB, >= 50% of the memory-copy "
               "bandwidth at the largest size):",
               ["bytes"] + [f"p={p} {c}" for p in ps for c in ("heed", "MPI", "heed/MPI")],
               ",".join(["r"] * (1 + 3 * len(ps))))
    sizes = sorted({r[0] for p in ps for r in ar[p]["rows"]})
    for b in sizes:
        cells = []
        for p in ps:
            r = next((r for r in ar[p]["rows"] if r[0] == b), None)
            cells += [f"{r[1]:.2f}", f"{r[2]:.2f}", f"{r[3]:.2f}"] if r else ["-"] * 3
        L.append(f"| {human(b)} | " + " | ".join(cells) + " |")
    L.append("")
    for p in ps:
        rows = ar[p]["rows"]
        big = [r for r in rows if r[0] >= 1 << 20]
        at64 = next((r for r in rows if r[0] == 64 << 20), None)
        largest = max(rows, key=lambda r: r[0])
        parts = []
        if big:
            parts.append(f">= 1.2x from 1 MB: {met(all(r[3] >= 1.2 for r in big))} "
                         f"(lowest {min(r[3] for r in big):.2f}x)")
        if at64:
            parts.append(f">= 3x at 64 MB: {met(at64[3] >= 3)} ({at64[3]:.2f}x)")
        if ar[p]["memcpy"]:
            share = largest[1] / ar[p]["memcpy"]
            parts.append(f"busbw at {human(largest[0])} is {share:.0%} of memcpy "
                         f"({ar[p]['memcpy']:.2f} GB/s per rank): {met(share >= 0.5)}")
        L.append(f"- p = {p}: " + "; ".join(parts) + ".")
    table_head(L, "Weak scaling, ViT-tiny training, batch 64 per rank, 1 thread per rank "
               "(targets at 16 ranks: efficiency >= 90%, >= 80% of the reduction hidden):",
               ["ranks", "samples/s", "efficiency", "step (s)", "reduction alone (ms)",
                "wait after backward, overlap on (ms)", "same, off (ms)",
                "exposed (last rank out of backward, ms)", "hidden",
                "independent copies: samples/s (efficiency)", "ranks agree"],
               "r,r,r,r,r,r,r,r,r,r,l")
    for r in scaling:
        hidden = f"{r['hidden']:.0%}" if r["hidden"] is not None else "-"
        off = f"{r['wait_off']:.1f}" if r["wait_off"] is not None else "-"
        ind = f"{r['ind_sps']:.1f} ({r['ind_eff']:.0%})" if r["ind_sps"] is not None else "-"
        L.append(f"| {r['p']} | {r['sps']:.1f} | {r['eff']:.0%} | {r['step']:.3f} | "
                 f"{r['alone']:.1f} | {r['wait_on']:.1f} | {off} | {r['exposed']:.1f} | {hidden} | "
                 f"{ind} | {'yes' if r['agree'] else '**NO**'} |")
    if any(r["ind_sps"] is not None for r in scaling):
        L.append("")
        L.append("Independent copies: every rank trains alone under the same launch and "
                 "binding, with no communication and no synchronisation; their efficiency is "
                 "the ceiling the cores allow when all of them work at once.")
    top = scaling[-1]
    if top["p"] < 16:
        L.append("")
        L.append(f"(This machine has {machine.get('cores', '?')} cores: no run at 16 ranks.)")
    if images:
        L.append("")
        for name, title in images:
            L.append(f"![{title}]({name})")
    return "\n".join(L) + "\n"


def human(b):
    for unit, shift in (("M", 20), ("K", 10)):
        if b >= 1 << shift and b % (1 << shift) == 0:
            return f"{b >> shift}{unit}"
    return str(b)


def plots(run, models, ar, scaling):
    """Writes the PNGs into run; returns [(file name, title)] or [] without matplotlib."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("plot_bench.py: no matplotlib (python3-matplotlib): tables only", file=sys.stderr)
        return []
    out = []

    def save(fig, ax, name, title, xlabel, ylabel):
        """Labels, grid and legend every plot shares; writes run/name."""
        if xlabel:
            ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(os.path.join(run, name), dpi=100)
        plt.close(fig)
        out.append((name, title))

    fig, ax = plt.subplots(figsize=(7, 4))
    for p in sorted(ar):
        rows = ar[p]["rows"]
        xs = [r[0] for r in rows]
        ax.plot(xs, [r[1] for r in rows], "o-", label=f"heed ring, p={p}")
        ax.plot(xs, [r[2] for r in rows], "s--", label=f"MPI_Allreduce, p={p}")
    ax.set_xscale("log", base=2)
    save(fig, ax, "allreduce.png", "All-reduce bus bandwidth, heed vs MPI_Allreduce", "bytes",
         "busbw (GB/s)")

    fig, ax = plt.subplots(figsize=(6, 4))
    ps = [r["p"] for r in scaling]
    ax.plot(ps, [100 * r["eff"] for r in scaling], "o-", label="heed, overlap on")
    ind = [r for r in scaling if r["ind_eff"] is not None]
    if ind:
        ax.plot([1] + [r["p"] for r in ind], [100] + [100 * r["ind_eff"] for r in ind], "s--",
                label="independent copies (no communication)")
    ax.axhline(90, color="gray", ls=":", label="target 90%")
    ax.set_xscale("log", base=2)
    ax.set_xticks(ps, [str(p) for p in ps])
    ax.set_ylim(0, max(105, 10 + max(100 * r["eff"] for r in scaling)))
    save(fig, ax, "scaling.png", "Weak scaling, ViT-tiny, batch 64 per rank",
         "ranks (1 thread each)", "weak-scaling efficiency (%)")

    rated = [m for m in models if m["ratio"] is not None]
    if rated:
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.bar([m["model"] for m in rated], [m["ratio"] for m in rated], color="tab:blue")
        ax.axhline(1.0, color="black", lw=0.8)
        ax.axhline(1.5, color="gray", ls=":", label="target 1.5x")
        save(fig, ax, "models.png", "Training step speed, heed / PyTorch", None,
             "heed / PyTorch samples/s (1 thread)")
    return out


def rewrite_docs(path, text, run, images):
    img_dir = os.path.join(os.path.dirname(path) or ".", "images")
    os.makedirs(img_dir, exist_ok=True)
    for name, _ in images:
        shutil.copyfile(os.path.join(run, name), os.path.join(img_dir, "bench_" + name))
    for name, _ in images:
        text = text.replace(f"]({name})", f"](images/bench_{name})")
    block = f"{BEGIN}\n{text}{END}"
    with open(path) as f:
        doc = f.read()
    if BEGIN in doc and END in doc:
        pre, rest = doc.split(BEGIN, 1)
        _, post = rest.split(END, 1)
        doc = pre + block + post
    else:
        doc = doc.rstrip("\n") + "\n\n## The whole suite, one run (scripts/bench_all.sh)\n\n" + \
            block + "\n"
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(doc)
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", help="run folder of scripts/bench_all.sh")
    ap.add_argument("--docs", help="Markdown file whose bench_all block to rewrite")
    a = ap.parse_args()
    machine = parse_machine(a.run)
    peak = parse_sgemm(a.run)
    models = parse_models(a.run)
    ar = parse_allreduce(a.run)
    scaling = parse_scaling(a.run)
    images = plots(a.run, models, ar, scaling)
    text = report(machine, peak, models, ar, scaling, images)
    with open(os.path.join(a.run, "report.md"), "w") as f:
        f.write(text)
    if a.docs:
        rewrite_docs(a.docs, text, a.run, images)
    print(text)


if __name__ == "__main__":
    main()
