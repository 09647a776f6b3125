import json
from conftest import ROOT, run
from steerable_nb.bench import SCHEMA, NO_VERDICT, bench_figures, page_figures

# Offline (no proxy reachable), a private corrupted-set cache, and passive OpenMP threads (when the tests share the
# cores with other processes, spinning OpenMP threads make PyTorch many times slower; the setting changes no result).
DEMO_ENV = {'no_proxy': '*', 'http_proxy': 'http://127.0.0.1:9', 'https_proxy': 'http://127.0.0.1:9',
            'OMP_WAIT_POLICY': 'PASSIVE'}

def test_demo_help(bin_dir):
    out = run(bin_dir / 'steerable_demo', '--help').stdout
    for flag in ('--out', '--augmentation', '--dataset', '--seed', '--epochs', '--quick'): assert flag in out

def test_demo_trains_evaluates_and_reports_offline(bin_dir, tmp_path):
    "steerable_demo --quick: the bench's demo preset (three arms, one seed) offline, with no verdict and every figure."
    env = {**DEMO_ENV, 'STEERABLE_NB_CACHE': str(tmp_path / 'cache')}
    p = run(bin_dir / 'steerable_demo', '--out', tmp_path / 'demo', '--quick', env=env, timeout=600)
    report = tmp_path / 'demo' / 'report.html'
    assert str(report.resolve()) in p.stdout and NO_VERDICT in p.stdout
    for text in ('steerable (exp)', 'invariant (M = I)', 'plain (λ = 0)', 'headline corruptions', 'AUROC'):
        assert text in p.stdout
    page = report.read_text()
    res = json.loads((tmp_path / 'demo' / 'results.json').read_text())
    titles = [f['layout']['title']['text'] for f in page_figures(page)]  # what a browser draws
    assert titles == [f.layout.title.text for f in bench_figures(res)] and NO_VERDICT in page
    assert '<script src=' not in page and 'plotly.js v' in page  # plotly.js inlined: the page works offline
    assert res['schema'] == SCHEMA and res['config']['preset'] == 'demo' and res['seeds'] == [0]
    sup = res['objectives']['supervised']
    assert list(res['objectives']) == ['supervised'] and sup['arms'] == ['exp', 'invariant', 'plain']
    assert sup['verdicts'] == []  # one seed: no verdict
    for arm in ('invariant', 'plain'):  # M = I: displacement error exactly 1, steered TTA exactly no TTA
        r = sup['per_seed'][arm][0]
        assert abs(r['equivariance']['rel_displacement_error'] - 1) < 1e-4 and r['tta']['clean']['gain_steered'] == 0
    assert (tmp_path / 'demo' / 'pretrained.pt').is_file()

def test_demo_bad_augmentation_is_a_clear_error(bin_dir, tmp_path):
    p = run(bin_dir / 'steerable_demo', '--out', tmp_path, '--augmentation', 'colour', check=False)
    assert p.returncode == 1 and "steerable_demo: error: unknown augmentation 'colour'" in p.stderr
    assert 'Traceback' not in p.stderr and not (tmp_path / 'report.html').exists()

def test_demo_unknown_dataset_is_a_clear_error(bin_dir, tmp_path):
    p = run(bin_dir / 'steerable_demo', '--out', tmp_path, '--dataset', 'digitz', '--quick', check=False)
    assert p.returncode == 1 and "unknown dataset 'digitz'" in p.stderr and 'Traceback' not in p.stderr
    assert not (tmp_path / 'report.html').exists()

def test_readme_matches_index_notebook(bin_dir):
    assert 'up to date' in run(bin_dir / 'steerable_readme', '--check').stdout

def test_library_is_what_the_notebooks_export(bin_dir, tmp_path):
    "nbdev_export into a scratch copy of the library must reproduce the committed modules."
    import shutil, filecmp
    shutil.copytree(ROOT, tmp_path / 'repo', ignore=shutil.ignore_patterns('.git', '.venv', '_proc', '_docs', '__pycache__', 'steerable_outputs'))
    run(bin_dir / 'nbdev_export', cwd=tmp_path / 'repo')
    lib, fresh = ROOT / 'steerable_nb', tmp_path / 'repo' / 'steerable_nb'
    names = sorted(p.name for p in lib.glob('*.py'))
    assert names == sorted(p.name for p in fresh.glob('*.py'))
    stale = [n for n in names if not filecmp.cmp(lib / n, fresh / n, shallow=False)]
    assert not stale, f"steerable_nb/{stale} differ from what nbs/ exports: run nbdev_export"
