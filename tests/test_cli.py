from conftest import ROOT, run

def test_demo_help(bin_dir):
    out = run(bin_dir / 'steerable_demo', '--help').stdout
    assert '--augmentation' in out and '--dataset' in out

def test_demo_writes_offline_report(bin_dir, tmp_path):
    p = run(bin_dir / 'steerable_demo', '--out', tmp_path / 'demo', env={'no_proxy': '*', 'http_proxy': 'http://127.0.0.1:9'})
    report = tmp_path / 'demo' / 'report.html'
    assert str(report.resolve()) in p.stdout
    html = report.read_text()
    assert html.count('class="plotly-graph-div"') == 2 and '<script src=' not in html

def test_demo_bad_augmentation_is_a_clear_error(bin_dir, tmp_path):
    p = run(bin_dir / 'steerable_demo', '--out', tmp_path, '--augmentation', 'colour', check=False)
    assert p.returncode != 0 and "unknown augmentation 'colour'" in p.stderr
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
