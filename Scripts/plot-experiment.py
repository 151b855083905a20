#!/usr/bin/env python3
"""Plots Scripts/run-experiment.sh's results.csv: token latency of star, ring and mesh
all-reduce vs one-way link delay, node count and link rate; TTFT vs delay; and writes
summary.md, the tables the write-up quotes.

    python3 Scripts/plot-experiment.py docs/experiments/tpi-star-ring/results.csv docs/experiments/tpi-star-ring

Needs matplotlib (pip install matplotlib).
"""
import csv
import os
import sys
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

COLORS = {"star": "#d62728", "ring": "#1f77b4", "mesh": "#2ca02c", "none": "#555555"}
ALGORITHMS = ["star", "ring", "mesh"]


def load(path):
    rows = []
    with open(path) as f:
        for r in csv.DictReader(f):
            for k in ("rate_mbit", "delay_ms", "ttft_ms_p50", "tpot_ms_p50", "tpot_ms_p90", "compute_ms_per_token",
                      "comm_ms_per_token", "allreduce_us_p50", "allreduce_us_p90", "bytes_per_token_per_node"):
                r[k] = float(r[k])
            r["nodes"] = int(r["nodes"])
            rows.append(r)
    return rows


def rate_label(mbit):
    return f"{mbit / 1000:g} Gbit/s" if mbit >= 1000 else f"{mbit:g} Mbit/s"


def series(rows, **fixed):
    return [r for r in rows if all(r[k] == v for k, v in fixed.items())]


def algorithm_of(r):
    return r["allreduce"] if r["nodes"] > 1 else "none"


def plot_vs_delay(rows, rates, delays, out, metric, ylabel, filename, title):
    max_nodes = max(r["nodes"] for r in rows)
    fig, axes = plt.subplots(1, len(rates), figsize=(5.5 * len(rates), 4.2), sharey=True, squeeze=False)
    for ax, mbit in zip(axes[0], rates):
        for nodes, style in ((max_nodes, "-"), (2, "--")):
            for a in ALGORITHMS:
                pts = sorted((r["delay_ms"], r[metric]) for r in series(rows, rate_mbit=mbit, nodes=nodes, allreduce=a))
                if pts:
                    ax.plot(*zip(*pts), style, marker="o", color=COLORS[a], label=f"{a}, {nodes} nodes")
        base = sorted((r["delay_ms"], r[metric]) for r in series(rows, rate_mbit=mbit, nodes=1))
        if base:
            ax.plot(*zip(*base), ":", marker=".", color=COLORS["none"], label="1 node (no all-reduce)")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(delays)
        ax.set_xticklabels([f"{d:g}" for d in delays])
        ax.set_xlabel("one-way link delay (ms)")
        ax.set_title(f"links {rate_label(mbit)}")
        ax.grid(True, which="both", alpha=0.3)
    axes[0][0].set_ylabel(ylabel)
    axes[0][-1].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(os.path.join(out, filename), dpi=120)
    plt.close(fig)


def plot_vs_nodes(rows, rates, delays, out):
    fig, axes = plt.subplots(len(rates), len(delays), figsize=(3.6 * len(delays), 3.3 * len(rates)), squeeze=False)
    node_counts = sorted({r["nodes"] for r in rows})
    for i, mbit in enumerate(rates):
        for j, d in enumerate(delays):
            ax = axes[i][j]
            base = series(rows, rate_mbit=mbit, delay_ms=d, nodes=1)
            for a in ALGORITHMS:
                pts = sorted((r["nodes"], r["tpot_ms_p50"]) for r in series(rows, rate_mbit=mbit, delay_ms=d, allreduce=a) if r["nodes"] > 1)
                if base:
                    pts = [(1, base[0]["tpot_ms_p50"])] + pts
                if pts:
                    ax.plot(*zip(*pts), marker="o", color=COLORS[a], label=a)
            ax.set_xticks(node_counts)
            ax.set_ylim(bottom=0)
            ax.set_title(f"{rate_label(mbit)}, {d:g} ms", fontsize=10)
            ax.grid(True, alpha=0.3)
            if i == len(rates) - 1:
                ax.set_xlabel("nodes")
            if j == 0:
                ax.set_ylabel("time per token, p50 (ms)")
    axes[0][0].legend(fontsize=8)
    fig.suptitle("Token latency vs node count (1 node: no all-reduce)")
    fig.tight_layout()
    fig.savefig(os.path.join(out, "latency-vs-nodes.png"), dpi=120)
    plt.close(fig)


def plot_vs_rate(rows, rates, delays, out):
    max_nodes = max(r["nodes"] for r in rows)
    fig, ax = plt.subplots(figsize=(9, 4.2))
    width = 0.8 / (len(ALGORITHMS) * len(rates))
    for gi, d in enumerate(delays):
        k = 0
        for a in ALGORITHMS:
            for ri, mbit in enumerate(rates):
                rs = series(rows, rate_mbit=mbit, delay_ms=d, nodes=max_nodes, allreduce=a)
                if rs:
                    ax.bar(gi - 0.4 + (k + 0.5) * width, rs[0]["tpot_ms_p50"], width, color=COLORS[a],
                           alpha=1.0 if ri == len(rates) - 1 else 0.45,
                           label=f"{a}, {rate_label(mbit)}" if gi == 0 else None)
                k += 1
    ax.set_xticks(range(len(delays)))
    ax.set_xticklabels([f"{d:g} ms" for d in delays])
    ax.set_xlabel("one-way link delay")
    ax.set_ylabel("time per token, p50 (ms)")
    ax.set_yscale("log")
    ax.grid(True, axis="y", which="both", alpha=0.3)
    ax.legend(fontsize=8, ncol=3)
    ax.set_title(f"Token latency at {max_nodes} nodes: link rate matters little once delay is a few ms")
    fig.tight_layout()
    fig.savefig(os.path.join(out, "latency-vs-rate.png"), dpi=120)
    plt.close(fig)


def summary(rows, rates, delays, out):
    max_nodes = max(r["nodes"] for r in rows)
    lines = ["# Summary tables (generated by Scripts/plot-experiment.py)", ""]
    unshaped = series(rows, rate_mbit=0.0)
    if unshaped:
        lines += ["## Unshaped links (veth + bridge, no delay or rate limit)", "",
                  "| nodes | all-reduce | time/token p50 (ms) | compute (ms) | comm (ms) | all-reduce p50 (us) |", "|---|---|---|---|---|---|"]
        for r in sorted(unshaped, key=lambda r: (r["nodes"], r["allreduce"])):
            lines.append(f"| {r['nodes']} | {algorithm_of(r)} | {r['tpot_ms_p50']:.2f} | {r['compute_ms_per_token']:.2f} | "
                         f"{r['comm_ms_per_token']:.2f} | {r['allreduce_us_p50']:.0f} |")
        lines.append("")
    for metric, name in (("tpot_ms_p50", "Time per output token, p50 (ms)"), ("ttft_ms_p50", "Time to first token, p50 (ms)")):
        lines += [f"## {name}, {max_nodes} nodes", "", "| rate | delay (ms) | " + " | ".join(ALGORITHMS) + " | fastest | 1 node |",
                  "|---|---|" + "---|" * (len(ALGORITHMS) + 2)]
        for mbit in rates:
            for d in delays:
                vals = {}
                for a in ALGORITHMS:
                    rs = series(rows, rate_mbit=mbit, delay_ms=d, nodes=max_nodes, allreduce=a)
                    if rs:
                        vals[a] = rs[0][metric]
                base = series(rows, rate_mbit=mbit, delay_ms=d, nodes=1)
                best = min(vals, key=vals.get) if vals else "-"
                cells = " | ".join(f"{vals[a]:.1f}" if a in vals else "-" for a in ALGORITHMS)
                lines.append(f"| {rate_label(mbit)} | {d:g} | {cells} | {best} | {base[0][metric]:.1f} |" if base else
                             f"| {rate_label(mbit)} | {d:g} | {cells} | {best} | - |")
        lines.append("")
    lines += [f"## Fastest all-reduce per setting (time per token), by node count", "",
              "| rate | delay (ms) | " + " | ".join(f"{n} nodes" for n in sorted({r['nodes'] for r in rows if r['nodes'] > 1})) + " |",
              "|---|---|" + "---|" * len({r['nodes'] for r in rows if r['nodes'] > 1})]
    for mbit in rates:
        for d in delays:
            cells = []
            for n in sorted({r["nodes"] for r in rows if r["nodes"] > 1}):
                rs = series(rows, rate_mbit=mbit, delay_ms=d, nodes=n)
                cells.append(min(rs, key=lambda r: r["tpot_ms_p50"])["allreduce"] if rs else "-")
            lines.append(f"| {rate_label(mbit)} | {d:g} | " + " | ".join(cells) + " |")
    lines.append("")
    with open(os.path.join(out, "summary.md"), "w") as f:
        f.write("\n".join(lines))


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    rows = load(sys.argv[1])
    out = sys.argv[2]
    os.makedirs(out, exist_ok=True)
    shaped = [r for r in rows if r["rate_mbit"] > 0]
    rates = sorted({r["rate_mbit"] for r in shaped})
    delays = sorted({r["delay_ms"] for r in shaped})
    plot_vs_delay(shaped, rates, delays, out, "tpot_ms_p50", "time per token, p50 (ms)", "latency-vs-delay.png",
                  "Token latency vs link delay (solid: most nodes, dashed: 2 nodes)")
    plot_vs_delay(shaped, rates, delays, out, "ttft_ms_p50", "time to first token, p50 (ms)", "ttft-vs-delay.png",
                  "Time to first token (prefill all-reduces carry the whole prompt) vs link delay")
    plot_vs_nodes(shaped, rates, delays, out)
    plot_vs_rate(shaped, rates, delays, out)
    summary(rows, rates, delays, out)
    print(f"plot-experiment: wrote latency-vs-delay.png, latency-vs-nodes.png, latency-vs-rate.png, ttft-vs-delay.png, summary.md to {out}")


if __name__ == "__main__":
    main()
