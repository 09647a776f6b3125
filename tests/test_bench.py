"""steerable_bench --quick (the bench's quick preset) as a real process: results.json, verdicts, the offline report,
identical training, reuse; a bench checkpoint reopened, evaluated, explored and resumed by another process."""
import json, sys
from dataclasses import asdict
from pathlib import Path
import pytest
from conftest import run
from steerable_nb.bench import (ARMS, CLAIMS, SCHEMA, BenchConfig, bench_runs, bench_figures, page_figures,
                                readme_section, README_START, README_END)
from steerable_nb.train import TrainConfig, train, read_checkpoint, load_checkpoint

BIN = Path(sys.executable).parent / 'steerable_bench'
ENV = {'no_proxy': '*', 'http_proxy': 'http://127.0.0.1:9', 'https_proxy': 'http://127.0.0.1:9', 'OMP_WAIT_POLICY': 'PASSIVE'}

@pytest.fixture(scope='module')
def quick(tmp_path_factory):
    "One quick reproduction (colour Fashion-MNIST at toy size, every arm, both objectives, two seeds), shared below."
    root = tmp_path_factory.mktemp('bench')
    env = {**ENV, 'STEERABLE_NB_CACHE': str(root / 'cache')}
    p = run(BIN, '--quick', '--out', root / 'out', env=env, timeout=900)
    return root / 'out', p, env

def test_quick_bench_writes_results_verdicts_and_an_offline_report(quick):
    out, p, _ = quick
    assert str((out / 'results.json').resolve()) in p.stdout and 'fast TTA' in p.stdout
    res = json.loads((out / 'results.json').read_text())
    assert res['schema'] == SCHEMA and res['config']['seeds'] == [0, 1] and res['config']['preset'] == 'quick'
    sup = res['objectives']['supervised']
    assert sup['arms'] == list(ARMS) and res['objectives']['simclr']['arms'] == ['exp', 'invariant']
    assert [v['claim'] for v in sup['verdicts']] == list(CLAIMS)
    assert all(v['verdict'] in ('better', 'tie', 'worse') for v in sup['verdicts'])
    for arm in ('invariant', 'plain', 'theta'):  # M = I: steered TTA is no TTA, exactly
        for r in sup['per_seed'][arm]:
            assert r['tta']['corrupted']['gain_steered'] == 0 and r['tta']['clean']['gain_steered'] == 0
    first = sup['per_seed']['exp'][0]
    assert set(first['ood']['auroc']) == {'near', 'far', 'covariate', 'mean'}
    assert set(first['corruption']['per_group']) <= {'photometric', 'noise', 'blur', 'geometric-digital'}
    assert res['data']['held_classes'] == [6, 7, 8, 9] and res['training_length']['epochs'] == [1, 2]
    page = (out / 'report.html').read_text()
    drawn = page_figures(page)
    assert [f['layout']['title']['text'] for f in drawn] == [f.layout.title.text for f in bench_figures(res)]
    assert all(f['data'] for f in drawn) and page.index('Verdicts') < page.index('Plotly.newPlot(')
    assert '<script src=' not in page and 'plotly.js v' in page  # plotly.js inlined: the page works offline

def test_every_arm_of_a_seed_is_trained_identically_but_where_named(quick):
    out, _, _ = quick
    cfgs = {d.name: json.loads(read_checkpoint(d / 'checkpoint.pt')['config']) for d in (out / 'runs').iterdir()}
    assert len(cfgs) == 6 * 2 + 2 * 2 + 1  # supervised arms, SimCLR arms, the training-length run
    for name, cfg in cfgs.items():
        objective, arm, seed, epochs = name.split('-')
        ref = cfgs[f"{objective}-invariant-{seed}-{epochs}"] if epochs == 'e1' else cfgs[f"{objective}-exp-{seed}-e1"]
        named = set(ARMS[arm].overrides) | set(ARMS['invariant'].overrides) | ({'epochs'} if epochs != 'e1' else set())
        assert {k for k in cfg if cfg[k] != ref[k]} <= named | {'out_dir'}, name
        assert cfg['objective'] == objective and f"seed{cfg['seed']}" == seed and cfg['task_views'] == 'both'

def test_rerun_reuses_checkpoints_and_evaluations(quick):
    out, _, env = quick
    files = [f for f in out.rglob('*') if f.suffix == '.pt' or f.name == 'eval.json']
    stamps = {f: f.stat().st_mtime_ns for f in files}
    before = json.loads((out / 'results.json').read_text())
    run(BIN, '--quick', '--out', out, env=env, timeout=600)
    assert {f: f.stat().st_mtime_ns for f in files} == stamps  # nothing retrained or re-evaluated
    after = json.loads((out / 'results.json').read_text())
    assert after['objectives'] == before['objectives']

def test_bench_help_and_bad_input(tmp_path):
    out = run(BIN, '--help').stdout
    for flag in ('--preset', '--quick', '--arms', '--simclr_arms', '--encoder', '--epochs', '--seeds', '--shard', '--out'):
        assert flag in out
    p = run(BIN, '--quick', '--arms', 'exp,rotation', '--out', tmp_path, check=False)
    assert p.returncode == 1 and 'steerable_bench: error: unknown arm' in p.stderr
    assert 'Traceback' not in p.stderr and not (tmp_path / 'results.json').exists()

def test_committed_results_and_readme_agree():
    "The README's results block is what `readme_section` makes of the committed results.json: no typed numbers."
    root = Path(__file__).resolve().parents[1]
    readme, path = (root / 'README.md').read_text(), root / 'nbs' / 'tutorials' / 'bench_results.json'
    block = readme[readme.index(README_START) + len(README_START):readme.index(README_END)].strip()
    if not path.exists():  # no full run committed yet: the README must not show numbers of its own
        assert block == '', "README has a results block but nbs/tutorials/bench_results.json is not committed"
        pytest.skip("no committed reproduction results yet (nbs/tutorials/bench_results.json)")
    res = json.loads(path.read_text())
    assert block == readme_section(res).strip()

FRESH = """
import sys, torch
from steerable_nb.train import load_checkpoint
from steerable_nb.data import load_dataset
from steerable_nb.evaluate import embed
from steerable_nb.widgets import SteeringExplorer
res = load_checkpoint(sys.argv[1])
cfg = res.config
test = load_dataset(cfg.dataset, 'test', root=cfg.data_root, size=cfg.image_size, seed=cfg.split_seed)
assert test.classes == ['0', '1', '2', '3', '4', '5'], test.classes
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
    cfg = BenchConfig.from_preset('demo', out=str(tmp_path), n_train=300, epochs=1)
    run_ = bench_runs(cfg)[0]
    assert run_.config.dataset == 'digits~classes0-1-2-3-4-5~n300'
    ck = train(run_.config, progress=False).checkpoint
    assert 'reopened digits~classes0-1-2-3-4-5~n300' in run(sys.executable, '-c', FRESH, ck, env=ENV).stdout
    p = run(BIN.parent / 'steerable_train', *_flags(run_.config, epochs=2), '--resume', '--quiet', env=ENV)
    assert str(Path(ck).resolve()) in p.stdout
    res = load_checkpoint(ck)
    assert len(res.history) == 2 and res.config.dataset == run_.config.dataset  # one more epoch, on the same data
