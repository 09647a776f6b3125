"""Behaviour check: the bench's `full` preset, evaluated on cached seed-0 runs, against the committed figures.

    python tools/check_full_preset.py SRC DST [--wait]

SRC is a folder that `steerable_bench --seeds 1 --long_epochs 0 --out SRC` trained (read only: each finished run,
one that has its eval.json, is copied to DST with that file kept as `eval.before.json`). Each copied run is then
evaluated by `steerable_nb.bench` (the full preset, seed 0, nothing trained) and compared, figure by figure, with
(a) `eval.before.json`: the evaluation of the same checkpoint by the code that trained it, and (b) seed 0 of the
committed `nbs/tutorials/bench_results.json`. Timings (seconds, speed-ups) are measured, so they are reported apart.
With --wait, it polls SRC until every run of the preset has been copied and evaluated.
"""
import json, shutil, sys, time
from pathlib import Path
from steerable_nb.bench import BenchConfig, bench_runs, bench_data, bench_metrics, _evaluate, _dig

TIMED = ('eval_seconds', 'train_seconds', 'timing', 'speedup_equal_k', 'speedup', 'seconds')

def diffs(a, b, path=(), tol=1e-5):
    "(path, a, b) wherever `a` and `b` differ by more than `tol` (numbers) or at all (other values)."
    if isinstance(a, dict) and isinstance(b, dict):
        out = [(path + (k,), a.get(k), b.get(k)) for k in set(a) ^ set(b)]
        return out + [d for k in a if k in b for d in diffs(a[k], b[k], path + (k,), tol)]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in diffs(x, y, path + (i,), tol)]
    num = lambda x: isinstance(x, (int, float)) and not isinstance(x, bool)
    if num(a) and num(b): return [] if abs(a - b) <= tol else [(path, a, b)]
    return [] if a == b else [(path, a, b)]

def report(name: str, new: dict, ref: dict, cfg) -> list[str]:
    "One line per group of moved figures; the primary metrics side by side."
    moved = diffs(new, ref)
    timed = [d for d in moved if any(t in d[0] for t in TIMED)]
    other = [d for d in moved if d not in timed]
    lines = [f"  vs {name}: {len(other)} figures moved (timings apart: {len(timed)} differ, as measured times do)"]
    for p, a, b in other[:12]: lines.append(f"    {'/'.join(map(str, p))}: {a} -> {b}")
    for m in bench_metrics(cfg):
        if m.primary: lines.append(f"    {m.claim:10s} {m.name}: {_dig(ref, *m.path)} -> {_dig(new, *m.path)}")
    return lines

def main(src, dst, *flags):
    src, dst = Path(src), Path(dst)
    cfg = BenchConfig.from_preset('full', seeds=(0,), long_epochs=0, out=str(dst))
    committed = json.loads(Path('nbs/tutorials/bench_results.json').read_text())
    data, done = {}, set()
    runs = bench_runs(cfg)
    while True:
        for run in runs:
            if run.key in done or not (src / 'runs' / run.key / 'eval.json').is_file(): continue
            here = Path(run.config.out_dir)
            if not here.exists():
                shutil.copytree(src / 'runs' / run.key, here)
                (here / 'eval.json').rename(here / 'eval.before.json')
            if 0 not in data: data[0] = bench_data(cfg, 0)
            t = time.perf_counter()
            new = _evaluate(run, cfg, lambda s: data[s])
            ref = committed['objectives'][run.objective]['per_seed'][run.arm][committed['seeds'].index(0)]
            before = json.loads((here / 'eval.before.json').read_text())['result']
            same_key = json.loads((here / 'eval.json').read_text())['key'] == \
                json.loads((here / 'eval.before.json').read_text())['key']
            print(f"{run.key} (evaluated in {time.perf_counter() - t:.0f} s; cache key "
                  f"{'the same: a rerun reuses the old eval.json' if same_key else 'changed'})")
            for line in report('the same checkpoint evaluated by the code that trained it', new, before, cfg): print(line)
            for line in report('seed 0 of the committed bench_results.json', new, ref, cfg): print(line)
            sys.stdout.flush()
            done.add(run.key)
        if '--wait' not in flags or len(done) == len(runs): break
        time.sleep(60)
    print(f"{len(done)} of {len(runs)} runs checked")

if __name__ == '__main__': main(*sys.argv[1:])
