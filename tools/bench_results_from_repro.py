"""One-off: rewrite the committed reproduction (`nbs/tutorials/repro_results.json`, schema steerable_nb.repro/1) as
the bench's results (`nbs/tutorials/bench_results.json`, schema steerable_nb.bench/2), from its own content.

Nothing is re-typed and nothing is re-measured: the per-seed evaluations, the data, the environment, the timing and
the training-length check are carried over as they are; the config gains the fields BenchConfig has now (`preset`).
Before writing, the script recomputes every metric row and verdict from the stored per-seed evaluations with
`steerable_nb.bench` and checks that they equal the stored ones (to the 5 digits the file keeps), so the bench's
statistics path gives the committed figures.

    python tools/bench_results_from_repro.py [OLD] [NEW]

It ran once, when the bench took over from `steerable_nb.repro`; the old file stays in git history
(`git show db3f8b5~1:nbs/tutorials/repro_results.json > /tmp/repro_results.json`), so the step can be rerun and checked.
"""
import json, sys
from dataclasses import asdict
from pathlib import Path
from steerable_nb.bench import SCHEMA, BenchConfig, objective_results, _rounded
from steerable_nb.data import atomic_write

def same(a, b, path='', tol=2e-5) -> list[str]:
    "Where `a` and `b` differ (numbers by more than `tol`)."
    if isinstance(a, dict) and isinstance(b, dict):
        if set(a) != set(b): return [f"{path}: keys {sorted(set(a) ^ set(b))}"]
        return [d for k in a for d in same(a[k], b[k], f"{path}/{k}", tol)]
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b): return [f"{path}: lengths {len(a)} != {len(b)}"]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in same(x, y, f"{path}[{i}]", tol)]
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return [] if abs(a - b) <= tol else [f"{path}: {a} != {b}"]
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]

def main(old_path='nbs/tutorials/repro_results.json', new_path='nbs/tutorials/bench_results.json'):
    old = json.loads(Path(old_path).read_text())
    if old.get('schema') != 'steerable_nb.repro/1': raise SystemExit(f"{old_path}: schema {old.get('schema')!r}")
    cfg = BenchConfig(**old['config'])  # the same settings; validated; `preset` added ('full': these are its defaults)
    evals = {f"{obj}-{a}-seed{s}-e{cfg.epochs}": r for obj, o in old['objectives'].items()
             for a, runs in o['per_seed'].items() for s, r in zip(old['seeds'], runs)}
    again = _rounded(json.loads(json.dumps(objective_results(cfg, evals, old['seeds']))))
    diffs = same(again, old['objectives'])
    if diffs: raise SystemExit("recomputed rows differ from the stored ones:\n" + '\n'.join(diffs[:20]))
    n_rows = sum(len(o['rows']) for o in old['objectives'].values())
    n_verdicts = sum(len(o['verdicts']) for o in old['objectives'].values())
    new = {**old, 'schema': SCHEMA, 'config': asdict(cfg)}
    atomic_write(Path(new_path), json.dumps(_rounded(new), indent=1))
    print(f"{new_path}: {n_rows} metric rows and {n_verdicts} verdicts recomputed from the per-seed evaluations, "
          f"equal to {old_path}'s; schema {SCHEMA}")

if __name__ == '__main__': main(*sys.argv[1:])
