"""Issue 19: the filters on real people *without parsing*, this code against the code before it, side by side.

    .venv/bin/python bench/filters/people.py [--real PATH] [--base a80d7f6] [--rounds 2] [--out bench/out/filters-people]

Every real person of ../shared/data/real goes through the detector path only (image in, no label map, no
pose): the 62 ccp-layering street photos (labels.csv) and the 62 other shared people (the person facts of
tests/data/real_filter_labels.csv, checked by eye for this issue). Each is one pair with no article, so the
old code (``--base``, extracted from git into OUT/base with ``git archive``) and this one run the same
manifest. Per verdict, precision / recall on the **tuning** and the **reporting** split (fixed before any
tuning, see SPLIT below), and pairs/s and CPU ms per pair with one worker, the two codes alternated
``--rounds`` times in fresh processes, with the load average. Truth per person:

* back view: labelled ``back`` (CCP has no back views; the shared set has one, DeepFashion reference_img_3);
* layering / extra garments: ccp ``layered == yes`` (a second upper garment over the top, or a scarf);
  shared: two upper kinds (upper / outer / dress / inner) or a scarf in ``human_wears``.

A person is predicted back when ``filter_back_view == back`` and layered when ``filter_extra_garments ==
extra-garments`` (the pair has no article, so only the person's garments can make it fire). This code is
scored three times: with its defaults (the layering detector's verdict is recorded per person but rejects
no pair), once more with ``det_layering_rejects`` (``curate filter --detector-layering-rejects``: the
detector's "layered" rejects the pair), once with that and the learnt outer-layer cue on at its tuning-split
point (``det_outer_layer_min_score`` 0.23; off by default since its one look at the reporting split), and once
with the opening-edge cue off too (``det_edge_min_strength`` inf: round two's rule); only the default runs are
timed against the base.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import subprocess
import sys
import tarfile
import io
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[2]
LABELS = REPO / "tests" / "data" / "real_filter_labels.csv"
UPPER_KINDS = {"upper", "outer", "dress", "inner"}


def reporting(rel: str) -> bool:
    """SPLIT, written down before tuning: a person is in the reporting split when the last hex digit of the
    sha1 of its path relative to shared/data/real is odd; all others are the tuning split."""
    return int(hashlib.sha1(rel.encode()).hexdigest()[-1], 16) % 2 == 1


def people(real: Path, only: str | None = None) -> pd.DataFrame:
    """One row per real person: path (relative to ``real``), set, split, truth (back, layered). With ``only``
    (``"tuning"``), the other split's people are dropped before any image is opened (not even a header)."""
    from PIL import Image

    rows = []
    ccp = pd.read_csv(real / "ccp-layering" / "labels.csv", dtype=str, keep_default_na=False)
    for r in ccp.itertuples(index=False):
        rows.append({"path": f"ccp-layering/{r.file}", "set": "ccp-layering", "back": False, "layered": r.layered == "yes"})
    labels = pd.read_csv(LABELS, dtype=str, keep_default_na=False).drop_duplicates("human")
    for r in labels.itertuples(index=False):
        worn = set(r.human_wears.split("+"))
        rows.append({"path": r.human, "set": "other shared", "back": r.human_view == "back",
                     "layered": len(worn & UPPER_KINDS) >= 2 or "scarf" in worn, "view": r.human_view})
    df = pd.DataFrame(rows)
    df["split"] = ["reporting" if reporting(p) else "tuning" for p in df["path"]]
    if only is not None:
        df = df[df["split"] == only].reset_index(drop=True)
    sizes = []
    for p in df["path"]:
        with Image.open(real / p) as im:
            sizes.append(im.size)
    df["width"], df["height"] = [s[0] for s in sizes], [s[1] for s in sizes]
    return df


# Run inside a fresh interpreter with PYTHONPATH set to one code tree; writes the manifest with *that*
# code's schema, filters it with one worker and prints the verdicts and the timings.
WORKER = r"""
import json, resource, sys, time
from pathlib import Path
import pandas as pd
root, ds, items, repeat = Path(sys.argv[1]), Path(sys.argv[2]), json.loads(Path(sys.argv[3]).read_text()), int(sys.argv[4])
overrides = json.loads(sys.argv[5])  # Thresholds fields to set (empty for the default and for the base code)
from curate.manifest import write_table
from curate.filters.command import apply_filters
from curate.filters.pipeline import FilterOptions
humans = pd.DataFrame([{"human_id": p, "path": p, "width": w, "height": h, "category": "unknown", "split": "test",
                        "source_layout": "images", "status": "ok"} for p, w, h in items])
pairs = pd.DataFrame([{"pair_id": f"{p}#{i}", "human_id": p, "article_id": None, "paired": False, "category": "unknown",
                       "split": "test", "source_layout": "bench", "status": "ok"} for i in range(repeat) for p, _, _ in items])
write_table(ds, "humans", humans, root, "images")
write_table(ds, "articles", pd.DataFrame({"article_id": pd.Series([], dtype=str)}), root, "images")
write_table(ds, "pairs", pairs, root, "images")
cpu = lambda: sum(getattr(resource.getrusage(w), f) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN) for f in ("ru_utime", "ru_stime"))
c, t = cpu(), time.perf_counter()
if overrides:
    import dataclasses
    from curate.filters.thresholds import Thresholds
    opts = FilterOptions(thresholds=dataclasses.replace(Thresholds(), **overrides))
else:
    opts = FilterOptions()
out = apply_filters(ds, opts, 1)
wall, used = time.perf_counter() - t, cpu() - c
first = out[out["pair_id"].str.endswith("#0")]
print("RESULT " + json.dumps({"wall": wall, "cpu": used, "n": len(out),
      "verdicts": {r.human_id: [r.filter_back_view, r.filter_extra_garments] for r in first.itertuples()}}))
"""


def run_code(code_root: Path, real: Path, ds: Path, items: Path, repeat: int, overrides: dict | None = None) -> dict:
    env = {**os.environ, "PYTHONPATH": str(code_root), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", WORKER, str(real), str(ds), str(items), str(repeat),
                           json.dumps(overrides or {})],
                          capture_output=True, text=True, env=env, cwd=code_root)
    line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
    if proc.returncode != 0 or not line:
        raise SystemExit(f"{code_root}: the filter run failed:\n{proc.stderr[-3000:]}")
    return json.loads(line[-1][7:])


def extract(base: str, out: Path) -> Path:
    """The ``curate`` package as of commit ``base``, unpacked under ``out`` (read from git, nothing checked out)."""
    dst = out / f"base-{base}"
    if not (dst / "curate").is_dir():
        data = subprocess.run(["git", "-C", str(REPO), "archive", base, "curate"], capture_output=True, check=True).stdout
        dst.mkdir(parents=True, exist_ok=True)
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            tar.extractall(dst, filter="data")
    return dst


def pr(df: pd.DataFrame, truth: str, pred: str) -> str:
    t, p = df[truth].astype(bool), df[pred].astype(bool)
    tp, fp, fn = int((t & p).sum()), int((~t & p).sum()), int((t & ~p).sum())
    prec = f"{tp / (tp + fp):.3f}" if tp + fp else "n/a (no positive verdict)"
    rec = f"{tp / (tp + fn):.3f}" if tp + fn else "n/a (no positive)"
    return f"{tp} | {fp} | {fn} | {prec} | {rec}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--real", type=Path, default=Path(os.environ.get("TRYON_REAL_DATA", REPO.parent / "shared" / "data" / "real")))
    ap.add_argument("--base", default="a80d7f6", help="the commit to compare against (the code before issue 19)")
    ap.add_argument("--rounds", type=int, default=2, help="old/new runs, alternated, for the speed ratio")
    ap.add_argument("--repeat", type=int, default=1, help="each person is filtered this many times per run (speed)")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "filters-people")
    args = ap.parse_args()
    out: Path = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    df = people(args.real)
    items = out / "items.json"
    items.write_text(json.dumps([[p, int(w), int(h)] for p, w, h in zip(df["path"], df["width"], df["height"])]))
    base_root = extract(args.base, out)
    codes = {f"before ({args.base})": base_root, "this code": REPO}
    # the detector's layering rejecting pairs (det_layering_rejects, off by default): quality only, one run
    aggressive = "this code, --detector-layering-rejects"
    round_two = "this code, --detector-layering-rejects --det-edge-min-strength inf --det-outer-layer-min-score inf (round two)"
    from curate.filters.thresholds import LEARNT_OUTER_LAYER_SCORE

    learnt = "this code, --detector-layering-rejects --det-outer-layer-min-score 0.23 (the learnt cue on: round four)"
    load0 = os.getloadavg()
    runs: dict[str, list[dict]] = {k: [] for k in codes}
    for rnd in range(args.rounds):
        for name, root in codes.items():
            r = run_code(root, args.real, out / f"ds-{len(runs[name])}-{name.split()[0]}", items, args.repeat)
            runs[name].append(r)
            print(f"round {rnd}: {name}: {r['n']} pairs in {r['wall']:.1f} s, {r['cpu'] / r['n'] * 1000:.1f} ms CPU/pair", flush=True)
    runs[aggressive] = [run_code(REPO, args.real, out / "ds-aggressive", items, args.repeat, {"det_layering_rejects": True})]
    # the same without round three's opening-edge cue (round two's rule), to show what the cue adds
    runs[round_two] = [run_code(REPO, args.real, out / "ds-round-two", items, args.repeat,
                                {"det_layering_rejects": True, "det_edge_min_strength": float("inf"),
                                 "det_outer_layer_min_score": float("inf")})]
    # and with round four's learnt outer-layer cue on at its tuning-split point, to show what that cue adds
    runs[learnt] = [run_code(REPO, args.real, out / "ds-round-four", items, args.repeat,
                             {"det_layering_rejects": True, "det_outer_layer_min_score": LEARNT_OUTER_LAYER_SCORE})]
    load1 = os.getloadavg()

    lines = [
        f"Command: `.venv/bin/python bench/filters/people.py --rounds {args.rounds} --repeat {args.repeat}` — run "
        f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC on {platform.node()} ({os.cpu_count()} cores, shared with other "
        f"agents: load average (1 min) {load0[0]:.1f} before, {load1[0]:.1f} after).",
        "",
        f"People: {len(df)} ({(df['set'] == 'ccp-layering').sum()} ccp-layering, {(df['set'] == 'other shared').sum()} other shared), "
        f"tuning {int((df['split'] == 'tuning').sum())}, reporting {int((df['split'] == 'reporting').sum())}; "
        f"layered positives: tuning {int(df[df.split == 'tuning'].layered.sum())}, reporting {int(df[df.split == 'reporting'].layered.sum())}; "
        f"back views: tuning {int(df[df.split == 'tuning'].back.sum())}, reporting {int(df[df.split == 'reporting'].back.sum())}.",
        "",
        "| code | split | verdict | TP | FP | FN | precision | recall |",
        "|---|---|---|---|---|---|---|---|",
    ]
    per_person = []
    for name in [*codes, aggressive, round_three, round_two]:
        v = runs[name][0]["verdicts"]
        d = df.assign(pred_back=[v[p][0] == "back" for p in df["path"]], pred_layered=[v[p][1] == "extra-garments" for p in df["path"]])
        per_person.append(d.assign(code=name))
        for split in ("tuning", "reporting"):
            s = d[d["split"] == split]
            lines.append(f"| {name} | {split} | back view | {pr(s, 'back', 'pred_back')} |")
            lines.append(f"| {name} | {split} | layering / extra garments | {pr(s, 'layered', 'pred_layered')} |")
        fronts = d[~d["back"]]
        lines.append(f"| {name} | all | front/side people rejected as back view | {int(fronts['pred_back'].sum())} of {len(fronts)} | | | | |")
    lines += ["", "| code | pairs per run | wall s (each round) | pairs/s, 1 worker | CPU ms per pair | pairs/s per core (CPU) |", "|---|---|---|---|---|---|"]
    rates = {}
    for name in codes:
        rs = runs[name]
        n = rs[0]["n"]
        walls = [r["wall"] for r in rs]
        cpu = sum(r["cpu"] for r in rs) / sum(r["n"] for r in rs)
        rates[name] = (sum(r["n"] for r in rs) / sum(walls), cpu)
        lines.append(f"| {name} | {n} | {', '.join(f'{w:.1f}' for w in walls)} | {rates[name][0]:.1f} | {cpu * 1000:.1f} | {1 / cpu:.1f} |")
    (old_rate, old_cpu), (new_rate, new_cpu) = rates.values()
    lines += ["", f"This code vs before: {new_rate / old_rate:.2f}x the pairs/s, {new_cpu / old_cpu:.2f}x the CPU per pair "
              "(both codes alternated in fresh processes, the same manifest, one worker; the run's wall time includes "
              "building the MediaPipe graph and saving the manifest).", ""]
    both = pd.concat(per_person)
    both[["code", "path", "set", "split", "back", "layered", "pred_back", "pred_layered"]].to_csv(out / "people.csv", index=False)
    misses = both[(both["code"] == aggressive) & (both["layered"] != both["pred_layered"])]
    for split in ("tuning", "reporting"):
        m = misses[misses["split"] == split]
        lines.append(f"- {split} split, {aggressive}: missed layered " + ", ".join(f"`{p}`" for p in m[m.layered]["path"]) +
                     "; false alarms " + ", ".join(f"`{p}`" for p in m[~m.layered]["path"]))
    (out / "report.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"\nwrote {out / 'report.md'} and {out / 'people.csv'}")


if __name__ == "__main__":
    main()
