"steerable_profile as a user runs it: torchvision and module:attr encoders, the files it writes, reopened in a fresh process."
import json, os, sys
from conftest import ROOT, run
from steerable_nb.bench import page_figures

OFFLINE = {'no_proxy': '*', 'http_proxy': 'http://127.0.0.1:9', 'https_proxy': 'http://127.0.0.1:9',
           'OMP_WAIT_POLICY': 'PASSIVE', 'OMP_NUM_THREADS': '1'}
QUICK = ('--data', 'digits', '--n_images', '40', '--epochs', '3', '--views', '2', '--k', '4', '--quiet')
KEYS = {'param', 'moves', 'rel_error', 'identity_error', 'hit_at_1', 'verdict'}

# Reopen a saved steering in a new interpreter and print M(θ)f(x) for seeded images and θ.
REOPEN = """
import sys, torch
from steerable_nb.posthoc import PosthocModel
m = PosthocModel.load(sys.argv[1])
g = torch.Generator().manual_seed(0)
x = torch.rand(3, m.spec.channels, *m.spec.image_size, generator=g)
theta = m.augmentation.sample(3, generator=g)
print(repr(m.steering(m.embed(x), theta).flatten()[:6].tolist()))
"""

def steered_here(path):
    "The same numbers as REOPEN, computed in this process."
    import torch
    from steerable_nb.posthoc import PosthocModel
    m = PosthocModel.load(path)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, m.spec.channels, *m.spec.image_size, generator=g)
    theta = m.augmentation.sample(3, generator=g)
    return m.steering(m.embed(x), theta).flatten()[:6].tolist()

def test_profile_help(bin_dir):
    out = run(bin_dir / 'steerable_profile', '--help').stdout
    for flag in ('--encoder', '--weights', '--data', '--augmentation', '--kind', '--out'): assert flag in out

def test_torchvision_encoder_with_a_weights_file(bin_dir, tmp_path):
    "A ResNet-18 with random weights saved as the user's file: profile, report, and the steering reopened elsewhere."
    import torch, torchvision
    torch.manual_seed(0)
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), tmp_path / 'r18.pt')
    out = tmp_path / 'profile'
    p = run(bin_dir / 'steerable_profile', '--encoder', 'resnet18', '--weights', tmp_path / 'r18.pt', '--augmentation',
            'color+crop', '--kind', 'linear', '--out', out, *QUICK, env=OFFLINE, timeout=600)
    assert str((out / 'report.html').resolve()) in p.stdout and 'verdict' in p.stdout
    res = json.loads((out / 'profile.json').read_text())
    assert [r['param'] for r in res['profile']] == ['brightness', 'contrast', 'crop_x', 'crop_y', 'crop_scale',
                                                    'crop_aspect']  # saturation and hue are inert on grey digits
    for r in res['profile']: assert KEYS <= set(r) and r['verdict'] in ('steerable', 'kept', 'discarded')
    assert res['encoder']['kind'] == 'torchvision' and res['encoder']['weights'] == str((tmp_path / 'r18.pt').resolve())
    page = (out / 'report.html').read_text()
    assert '<script src=' not in page and 'PosthocModel.load' in page and len(page_figures(page)) == 3
    state = torch.load(out / 'steering.pt', weights_only=True)
    assert not any(k.startswith('encoder') for k in state['model'])  # the encoder is kept by reference only
    fresh = run(sys.executable, '-c', REOPEN, out / 'steering.pt', env=OFFLINE).stdout
    assert eval(fresh) == steered_here(out / 'steering.pt')

def test_module_attr_encoder_reopens_through_its_import(bin_dir, tmp_path):
    "A user's module, named module:attr, is imported again in the fresh process (nothing of it is pickled)."
    (tmp_path / 'my_nets.py').write_text(
        "import torch\nfrom torch import nn\n"
        "def encoder():\n    torch.manual_seed(0)\n    return nn.Sequential(nn.Flatten(), nn.Linear(24 * 24, 16))\n")
    env = {**OFFLINE, 'PYTHONPATH': os.pathsep.join([str(tmp_path), os.environ.get('PYTHONPATH', '')])}
    out = tmp_path / 'profile'
    run(bin_dir / 'steerable_profile', '--encoder', 'my_nets:encoder', '--augmentation', 'brightness', '--kind', 'exp',
        '--out', out, *QUICK, env=env, timeout=600)
    res = json.loads((out / 'profile.json').read_text())
    assert res['encoder']['kind'] == 'import' and [r['param'] for r in res['profile']] == ['brightness']
    assert eval(run(sys.executable, '-c', REOPEN, out / 'steering.pt', env=env).stdout)
    gone = run(sys.executable, '-c', REOPEN, out / 'steering.pt', env=OFFLINE, check=False)  # the module is not found
    assert gone.returncode != 0 and "cannot import 'my_nets'" in gone.stderr

def test_bad_input_is_a_clear_error(bin_dir, tmp_path):
    p = run(bin_dir / 'steerable_profile', '--encoder', 'resnet1x', '--out', tmp_path, *QUICK, check=False, env=OFFLINE)
    assert p.returncode == 1 and "steerable_profile: error: unknown torchvision model 'resnet1x'" in p.stderr
    assert 'Traceback' not in p.stderr and not (tmp_path / 'report.html').exists()
    p = run(bin_dir / 'steerable_profile', '--encoder', 'resnet18', '--weights', tmp_path / 'none.pt', '--out', tmp_path,
            *QUICK, check=False, env=OFFLINE)
    assert p.returncode == 1 and 'no file at' in p.stderr and 'Traceback' not in p.stderr
