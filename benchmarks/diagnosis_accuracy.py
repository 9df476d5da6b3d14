"""Accuracy of `ktk.callbacks.TrainingDiagnosis` on the labelled corpus.

Runs every setting of `benchmarks/diagnosis_corpus` (each with a known root
cause, or healthy) with `TrainingDiagnosis(verbose=0)`, one subprocess per
Keras backend, and prints per code:

- recall: runs labelled with the code whose root cause (the first warning
  or error listed) is that code;
- precision: runs whose root cause is the code that are labelled with it;
- false alarms: healthy runs with any warning or error;

with a column per backend, for each split, and the recall by seed. Every
run's findings with their evidence go to `--json` so thresholds can be
calibrated on the calibration half and reported on the held-out half.

    python benchmarks/diagnosis_accuracy.py [--backend tensorflow|jax|torch|all]
        [--split calibration|heldout|fresh|all] [--seeds 0,1,2] [--quick]
        [--json out.json]

Settings whose label `labels.json` does not support are skipped (set
`KTK_ALL_SETTINGS=1` to run them anyway).

`--quick`: only the first setting of each code in the split, seed 0 only
(a smoke run, not a measurement).
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BACKENDS = ("tensorflow", "jax", "torch")


def _finding_dict(f) -> dict:
    if hasattr(f, "to_dict"):
        d = f.to_dict()
    else:
        d = dataclasses.asdict(f)
    d.pop("advice", None)
    d.pop("remedies", None)
    return d


def _selected(split: str, quick: bool, codes: str | None = None):
    sys.path.insert(0, HERE)
    import diagnosis_corpus as dc

    chosen = [
        s for s in dc.settings() if split == "all" or s.split == split
    ]
    # Only settings whose label the stored measurements support (see
    # diagnosis_corpus/label.py); the others are to be fixed, not scored.
    supported = dc.supported_names()
    if supported is not None and not os.environ.get("KTK_ALL_SETTINGS"):
        chosen = [s for s in chosen if s.name in supported]
    if codes:
        wanted = set(codes.split(","))
        chosen = [s for s in chosen if s.code in wanted]
    if quick:
        first = {}
        for s in chosen:
            first.setdefault(s.code, s)
        chosen = list(first.values())
    return chosen


def worker(args) -> int:
    """Runs the corpus on this process' backend; writes JSON lines."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import warnings

    import keras

    import keras_training_kit as ktk

    sys.path.insert(0, HERE)
    import diagnosis_corpus as dc

    warnings.simplefilter("ignore")
    seeds = [0] if args.quick else [int(s) for s in args.seeds.split(",")]
    with open(args.out, "a") as fh:
        # Seed-major, so that an interrupted run still covers every
        # setting at the first seeds.
        for seed in seeds:
            for s in _selected(args.split, args.quick, args.codes):
                keras.backend.clear_session()
                row = {
                    "backend": keras.backend.backend(), "setting": s.name,
                    "code": s.code, "split": s.split, "seed": seed,
                }
                start = time.perf_counter()
                try:
                    diag = ktk.callbacks.TrainingDiagnosis(verbose=0)
                    dc.run(s, seed, callbacks=[diag])
                    findings = [_finding_dict(f) for f in diag.findings]
                    problems = [
                        f for f in findings
                        if f["severity"] in ("warning", "error")
                    ]
                    row["findings"] = findings
                    row["measurements"] = getattr(
                        diag.findings, "measurements", {})
                    row["root"] = problems[0]["code"] if problems else (
                        "healthy"
                    )
                    row["problems"] = [f["code"] for f in problems]
                except Exception as exc:  # a crash is a result too
                    row["root"] = "crash"
                    row["problems"] = ["crash"]
                    row["error"] = f"{type(exc).__name__}: {exc}"[:500]
                row["seconds"] = round(time.perf_counter() - start, 2)
                fh.write(json.dumps(row, default=str) + "\n")
                fh.flush()
                print(f"{row['backend']:10s} {s.name:45s} seed {seed}: "
                      f"{row['root']}", flush=True)
    return 0


def _spawn(backend: str, args) -> list[dict]:
    fd, path = tempfile.mkstemp(suffix=f".{backend}.jsonl")
    os.close(fd)
    print(f"[{backend}] runs stream to {path}", file=sys.stderr)
    cmd = [
        sys.executable, os.path.abspath(__file__), "--worker",
        "--split", args.split, "--seeds", args.seeds, "--out", path,
    ] + (["--quick"] if args.quick else []) + (
        ["--codes", args.codes] if args.codes else [])
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run(cmd, env=env, stdout=sys.stderr)
    with open(path) as fh:
        rows = [json.loads(line) for line in fh if line.strip()]
    os.unlink(path)
    if proc.returncode:
        print(f"[{backend}] worker exited with {proc.returncode} after "
              f"{len(rows)} runs", file=sys.stderr)
    return rows


def _load(path: str) -> list[dict]:
    with open(path) as fh:
        text = fh.read()
    try:
        return json.loads(text)["runs"]  # a --json file
    except (ValueError, KeyError, TypeError):
        pass
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def summarize(rows: list[dict]) -> dict:
    """Recall / precision per code and false alarms, per backend x split."""
    out = {}
    groups = collections.defaultdict(list)
    for r in rows:
        groups[(r["backend"], r["split"])].append(r)
    for (backend, split), rs in groups.items():
        codes = sorted({r["code"] for r in rs} - {"healthy"})
        table = {}
        for c in codes:
            mine = [r for r in rs if r["code"] == c]
            named = [r for r in rs if r["root"] == c]
            table[c] = {
                "runs": len(mine),
                "hits": sum(r["root"] == c for r in mine),
                "named": len(named),
                "named_right": sum(r["code"] == c for r in named),
                "by_seed": {
                    str(seed): [
                        sum(r["root"] == c for r in mine if r["seed"] == seed),
                        sum(1 for r in mine if r["seed"] == seed),
                    ]
                    for seed in sorted({r["seed"] for r in mine})
                },
            }
        healthy = [r for r in rs if r["code"] == "healthy"]
        table["healthy"] = {
            "runs": len(healthy),
            "false_alarms": sum(bool(r["problems"]) for r in healthy),
            "by_seed": {
                str(seed): [
                    sum(bool(r["problems"]) for r in healthy
                        if r["seed"] == seed),
                    sum(1 for r in healthy if r["seed"] == seed),
                ]
                for seed in sorted({r["seed"] for r in healthy})
            },
        }
        out[f"{backend}/{split}"] = table
    return out


def _pct(a, b):
    return "   -  " if not b else f"{100 * a / b:5.0f}%"


def print_tables(summary: dict, backends: list[str]) -> None:
    splits = sorted({k.split("/")[1] for k in summary})
    for split in splits:
        cols = [b for b in backends if f"{b}/{split}" in summary]
        print(f"\n## split: {split}  (recall = root cause right; "
              "precision of that root cause)")
        head = f"{'code':22s}" + "".join(
            f" | {b[:10]:>10s} recall  prec  " for b in cols
        )
        print(head)
        codes = sorted({
            c for b in cols for c in summary[f"{b}/{split}"]
        } - {"healthy"})
        for c in codes:
            line = f"{c:22s}"
            for b in cols:
                t = summary[f"{b}/{split}"].get(c)
                if t is None:
                    line += " | " + " " * 27
                    continue
                line += (f" | {t['hits']:3d}/{t['runs']:<3d} "
                         f"{_pct(t['hits'], t['runs'])} "
                         f"{_pct(t['named_right'], t['named'])}  ")
            print(line)
        line = f"{'healthy: false alarms':22s}"
        for b in cols:
            t = summary[f"{b}/{split}"]["healthy"]
            line += (f" | {t['false_alarms']:3d}/{t['runs']:<3d} "
                     f"{_pct(t['false_alarms'], t['runs'])}        ")
        print(line)
        print("\nrecall by seed (hits/runs per seed; healthy: false alarms)")
        for c in codes + ["healthy"]:
            line = f"{c:22s}"
            for b in cols:
                t = summary[f"{b}/{split}"].get(c)
                seeds = " ".join(
                    f"{h}/{n}" for h, n in (t or {}).get("by_seed", {}).values()
                )
                line += f" | {b[:5]} {seeds:18s}"
            print(line)


def print_misses(rows: list[dict]) -> None:
    print("\n## misses (root cause != label)")
    for r in rows:
        if r["root"] == r["code"] and not (
            r["code"] == "healthy" and r["problems"]
        ):
            continue
        extra = f" ({r['error']})" if "error" in r else ""
        print(f"{r['backend'][:5]} {r['split'][:5]} {r['setting']:45s} "
              f"s{r['seed']}: got {r['root']} {r['problems']}{extra}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", default="tensorflow",
                    choices=(*BACKENDS, "all"))
    ap.add_argument("--split", default="calibration",
                    choices=("calibration", "heldout", "fresh", "all"))
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--codes", default=None,
                    help="only the settings labelled with these codes "
                    "(comma-separated, e.g. healthy,dead_units)")
    ap.add_argument("--json", default=None)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--out", default=None, help=argparse.SUPPRESS)
    ap.add_argument(
        "--summarize", default=None, metavar="FILE",
        help="only print the tables of an earlier --json file or of a "
        "worker's JSON-lines file (e.g. an interrupted run)",
    )
    args = ap.parse_args(argv)
    if args.worker:
        return worker(args)
    backends = list(BACKENDS) if args.backend == "all" else [args.backend]
    start = time.perf_counter()
    if args.summarize:
        rows = _load(args.summarize)
        backends = [b for b in BACKENDS if any(r["backend"] == b
                                               for r in rows)]
    else:
        rows = []
        for b in backends:
            rows += _spawn(b, args)
    summary = summarize(rows)
    print(f"# diagnosis accuracy: {len(rows)} runs, "
          f"{time.perf_counter() - start:.0f}s wall"
          f"{' (quick smoke run)' if args.quick else ''}")
    print_tables(summary, backends)
    print_misses(rows)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"summary": summary, "runs": rows}, fh, indent=1,
                      default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
