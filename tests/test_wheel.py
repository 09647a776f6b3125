"""The wheel installs and runs on its own: built from a copy of the repository, installed into a fresh virtualenv,
run from a folder outside the source tree.

A fresh install of torch would take 5 GB and minutes, so the new virtualenv reuses the packages of the environment
running the tests: it is created from the *base* interpreter (not from this virtualenv's python, whose
`--system-site-packages` would point at the base interpreter's packages, not at this virtualenv's), and a `.pth`
file appends this environment's site-packages to its path, *after* its own. Paths a `.pth` file adds are not scanned
for `.pth` files themselves, so the editable install's finder (`__editable___steerable_nb_*_finder`, installed by a
`.pth` file in this environment) never runs there: `steerable_nb` can only come from the wheel."""
import json, os, shutil, site, subprocess, sys, sysconfig, zipfile
from pathlib import Path
import pytest
from conftest import ROOT, run

PROBE = r"""
import importlib, json, sys
from importlib.metadata import distribution, version, PackageNotFoundError
from packaging.requirements import Requirement
import steerable_nb
mods = ['augment', 'data', 'models', 'steering', 'losses', 'model', 'train', 'evaluate', 'cli', 'docs']
for m in mods: importlib.import_module('steerable_nb.' + m)
unmet = []
for r in map(Requirement, distribution('steerable_nb').requires or []):
    if r.marker and not r.marker.evaluate({'extra': ''}): continue
    try: ok = r.specifier.contains(version(r.name), prereleases=True)
    except PackageNotFoundError: ok = False
    if not ok: unmet.append(str(r))
print(json.dumps(dict(file=steerable_nb.__file__, version=steerable_nb.__version__, unmet=unmet,
                      editable=[m for m in sys.modules if 'editable' in m] + [type(f).__name__ for f in sys.meta_path if 'ditable' in type(f).__name__],
                      scripts=sorted(e.name for e in distribution('steerable_nb').entry_points if e.group == 'console_scripts'))))
"""

@pytest.fixture(scope='module')
def wheel(tmp_path_factory):
    "The wheel, built with `python -m build --wheel --no-isolation` from a scratch copy of the repository."
    tmp = tmp_path_factory.mktemp('wheel')
    src = tmp / 'src'
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns('.git', '.venv', '_proc', '_docs', '__pycache__', 'build', 'dist',
                                                              '*.egg-info', 'steerable_outputs', '.pytest_cache'))
    run(sys.executable, '-m', 'build', '--wheel', '--no-isolation', '--outdir', tmp / 'dist', src, timeout=300)
    wheels = list((tmp / 'dist').glob('steerable_nb-*.whl'))
    assert len(wheels) == 1, wheels
    return wheels[0]

@pytest.fixture(scope='module')
def venv(wheel, tmp_path_factory):
    "A fresh virtualenv holding the wheel; this environment's packages (torch, ...) come after its own."
    env = tmp_path_factory.mktemp('venv') / 'venv'
    run(sys._base_executable, '-m', 'venv', '--without-pip', env, timeout=120)
    py = env / 'bin' / 'python'
    purelib = Path(run(py, '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])').stdout.strip())
    ours = [p for p in site.getsitepackages() + [sysconfig.get_paths()['purelib']] if Path(p).is_dir()]
    (purelib / '_steerable_nb_test_reuse.pth').write_text('\n'.join(dict.fromkeys(ours)) + '\n')
    run(sys.executable, '-m', 'pip', '--python', py, 'install', '--no-deps', '--no-index', '-q', wheel, timeout=300)
    return env, purelib

def _env(venv):
    env, _ = venv
    drop = ('PYTHONPATH', 'PYTHONHOME', 'VIRTUAL_ENV', 'PYTHONSTARTUP')
    e = {k: v for k, v in os.environ.items() if k not in drop}
    return {**e, 'PATH': f"{env / 'bin'}{os.pathsep}{e.get('PATH', '')}", 'VIRTUAL_ENV': str(env)}

def test_wheel_contents(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    mods = {Path(n).name for n in names if n.startswith('steerable_nb/') and n.endswith('.py')}
    assert {p.name for p in (ROOT / 'steerable_nb').glob('*.py')} <= mods, "the wheel lacks modules of steerable_nb/"
    assert not [n for n in names if n.startswith(('nbs/', 'tests/', 'tools/'))], "the wheel should hold the library only"
    assert 'steerable_nb/pretrained/demo.pt' in names, "the wheel lacks the pretrained demo model"
    meta = next(n for n in names if n.endswith('.dist-info/entry_points.txt'))
    assert 'steerable_demo = steerable_nb.cli:demo_main' in zipfile.ZipFile(wheel).read(meta).decode()

def test_installed_package_comes_from_the_wheel(venv, tmp_path):
    env, purelib = venv
    p = _run(venv, env / 'bin' / 'python', '-c', PROBE, cwd=tmp_path)
    info = json.loads(p.stdout.strip().splitlines()[-1])
    assert Path(info['file']).resolve().is_relative_to(purelib.resolve()), f"steerable_nb imported from {info['file']}, not the wheel"
    assert not Path(info['file']).resolve().is_relative_to(ROOT), info['file']
    assert info['editable'] == [], f"the editable install leaked into the fresh virtualenv: {info['editable']}"
    assert info['unmet'] == [], f"requirements of the wheel not met by the environment: {info['unmet']}"
    assert {'steerable_demo', 'steerable_train', 'steerable_readme'} <= set(info['scripts'])
    assert 'steerable_docs' not in info['scripts']  # the site builder is development tooling (tools/docs_site.py)
    import steerable_nb
    assert info['version'] == steerable_nb.__version__

def _run(venv, *args, cwd, timeout=300):
    "Run a command of the fresh virtualenv in `cwd` with exactly its environment (no PYTHONPATH), bounded."
    p = subprocess.run(list(map(str, args)), cwd=cwd, env={**_env(venv), 'OMP_NUM_THREADS': '2', 'PYTHONUNBUFFERED': '1'},
                       capture_output=True, text=True, timeout=timeout)
    assert p.returncode == 0, f"{' '.join(map(str, args))} exited {p.returncode}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}"
    return p

def test_installed_console_scripts_run(venv, tmp_path):
    env, _ = venv
    assert '--augmentation' in _run(venv, env / 'bin' / 'steerable_demo', '--help', cwd=tmp_path).stdout
    out = tmp_path / 'run'
    p = _run(venv, env / 'bin' / 'steerable_train', '--image_size', 16, '--epochs', 1, '--batch_size', 64, '--out_dir', out, '--quiet',
             cwd=tmp_path)
    # the pretrained model ships inside the wheel and opens with nothing else
    load = "from steerable_nb.train import load_pretrained; print(load_pretrained().config.steering)"
    assert _run(venv, env / 'bin' / 'python', '-c', load, cwd=tmp_path).stdout.strip() == 'exp'
    ckpts = list(out.rglob('*.pt'))
    assert ckpts, f"no checkpoint under {out}:\n{p.stdout}\n{p.stderr}"
    assert any(c.name in p.stdout for c in ckpts), p.stdout
