"""steerable_bench --quick as a real process: results.json schema, the offline report, identical training, reuse on rerun;
a bench checkpoint reopened, evaluated, explored and resumed by another process."""
import json, sys
from dataclasses import asdict
from pathlib import Path
import pytest
from conftest import run
from steerable_nb.bench import BenchConfig, bench_data, bench_runs, bench_figures, page_figures
from steerable_nb.train import TrainConfig, train, read_checkpoint, load_checkpoint

BIN = Path(sys.executable).parent / 'steerable_bench'
ENV = {'no_proxy': '*', 'http_proxy': 'http://127.0.0.1:9', 'https_proxy': 'http://127.0.0.1:9', 'OMP_WAIT_POLICY': 'PASSIVE'}

@pytest.fixture(scope='module')
def quick(tmp_path_factory):
    "One quick benchmark run (digits, 16 px, two seeds, exp / mlp / none), shared by the tests below."
    root = tmp_path_factory.mktemp('bench')
    env = {**ENV, 'STEERABLE_NB_CACHE': str(root / 'cache')}
    p = run(BIN, '--quick', '--out', root / 'out', env=env, timeout=900)
    return root / 'out', p, env

def test_quick_bench_writes_results_and_an_offline_report(quick):
    out, p, _ = quick
    assert str((out / 'results.json').resolve()) in p.stdout and 'steerable (mlp)' in p.stdout
    res = json.loads((out / 'results.json').read_text())
    assert sorted(res['models']) == ['exp', 'mlp', 'none'] and res['config']['seeds'] == [0, 1]
    for name, m in res['models'].items():
        eq = m['equivariance']
        for key in ('rel_error', 'rel_displacement_error', 'hit_at_1', 'mrr'):
            assert len(eq[key]['values']) == 2 and eq[key]['std'] is not None, (name, key)  # mean ± std over seeds
        assert {'class_split', 'in_domain'} <= set(m['transfer'])
        assert set(m['corruption_accuracy']['per_corruption']) == set(res['config']['corruptions'])
        assert {'k', 'speedup', 'accuracy_steered', 'accuracy_true', 'accuracy_none'} <= set(m['tta'])
        assert m['tta']['k'] == 16 and set(m['ood']['auroc']) == {'corrupted_s3', 'corrupted_s5'}
        for scores in m['ood']['auroc'].values():
            assert {'msp', 'energy', 'steered_confidence', 'steered_agreement', 'true_confidence'} <= set(scores)
    inv = res['models']['none']
    assert abs(inv['tta']['accuracy_steered']['mean'] - inv['tta']['accuracy_none']['mean']) < 1e-9  # M = I
    assert any(r['vs_invariant'] for r in res['claims'])  # paired differences against the invariant model
    page = (out / 'report.html').read_text()
    drawn = page_figures(page)  # what a browser draws: every figure of the results, titled and with its traces
    assert [f['layout']['title']['text'] for f in drawn] == [f.layout.title.text for f in bench_figures(res)]
    assert all(f['data'] for f in drawn)
    assert '<script src=' not in page and 'plotly.js v' in page  # plotly.js inlined: the page works offline

def test_every_model_of_a_seed_is_trained_identically_but_for_steering(quick):
    out, _, _ = quick
    cfgs = {d.name: json.loads(read_checkpoint(d / 'checkpoint.pt')['config']) for d in (out / 'runs').iterdir()}
    assert len(cfgs) == 2 * 3 * 2  # (main, class split) x 3 kinds x 2 seeds
    for name, cfg in cfgs.items():
        protocol, kind, seed = name.split('-')
        ref = cfgs[f"{protocol}-none-{seed}"]
        assert {k for k in cfg if cfg[k] != ref[k]} <= {'steering', 'out_dir'}, name
        assert cfg['steering'] == kind and f"seed{cfg['seed']}" == seed

def test_rerun_reuses_checkpoints_and_evaluations(quick):
    out, _, env = quick
    files = [f for f in out.rglob('*') if f.suffix == '.pt' or f.name == 'eval.json']
    stamps = {f: f.stat().st_mtime_ns for f in files}
    before = json.loads((out / 'results.json').read_text())
    run(BIN, '--quick', '--out', out, env=env, timeout=600)
    assert {f: f.stat().st_mtime_ns for f in files} == stamps  # nothing retrained or re-evaluated
    after = json.loads((out / 'results.json').read_text())
    assert after['models']['exp']['equivariance'] == before['models']['exp']['equivariance']

def test_bench_help_and_bad_input(tmp_path):
    out = run(BIN, '--help').stdout
    for flag in ('--quick', '--dataset', '--encoder', '--objective', '--epochs', '--seeds', '--out'): assert flag in out
    p = run(BIN, '--quick', '--kinds', 'exp,rotation', '--out', tmp_path, check=False)
    assert p.returncode == 1 and 'steerable_bench: error: kinds must be steering kinds' in p.stderr
    assert 'Traceback' not in p.stderr and not (tmp_path / 'results.json').exists()

FRESH = """
import sys, torch
from steerable_nb.train import load_checkpoint
from steerable_nb.data import load_dataset
from steerable_nb.evaluate import embed
from steerable_nb.widgets import SteeringExplorer
res = load_checkpoint(sys.argv[1])
cfg = res.config
test = load_dataset(cfg.dataset, 'test', root=cfg.data_root, size=cfg.image_size, seed=cfg.split_seed)
assert test.classes == ['0', '1', '2', '3', '4'], test.classes
z = embed(res.model, test.images[:16])
assert tuple(z.shape) == (16, cfg.embed_dim) and bool(torch.isfinite(z).all())
explorer = SteeringExplorer(load_checkpoint(sys.argv[1]))
assert list(explorer.sliders) == list(res.model.augmentation.param_names)
print('reopened', cfg.dataset)
"""

def _flags(cfg: TrainConfig, **changes) -> list[str]:
    "steerable_train flags that rebuild `cfg` (with `changes`): one per field that differs from the default."
    default, flags = asdict(TrainConfig()), []
    for k, v in {**asdict(cfg), **changes}.items():
        if v == default[k]: continue
        if isinstance(v, bool): flags.append(f"--{k}" if v else f"--no-{k}")
        else: flags += [f"--{k}", 'none' if v is None else str(v)]
    return flags

def test_a_subset_checkpoint_reopens_in_a_fresh_process(tmp_path):
    "A bench run on part of a dataset names it by value: another process opens, evaluates, explores and resumes it."
    cfg = BenchConfig.quick(out=str(tmp_path), kinds=('exp',), seeds=(0,), n_train=300)
    run_ = next(r for r in bench_runs(cfg, bench_data(cfg)) if r.protocol == 'split')
    assert run_.config.dataset == 'digits~classes0-1-2-3-4~n150'
    ck = train(run_.config, progress=False).checkpoint
    assert 'reopened digits~classes0-1-2-3-4~n150' in run(sys.executable, '-c', FRESH, ck, env=ENV).stdout
    p = run(BIN.parent / 'steerable_train', *_flags(run_.config, epochs=2), '--resume', '--quiet', env=ENV)
    assert str(Path(ck).resolve()) in p.stdout
    res = load_checkpoint(ck)
    assert len(res.history) == 2 and res.config.dataset == run_.config.dataset  # one more epoch, on the same data
