"""Training as real processes: SIGKILL and Ctrl-C mid-run then resume, torchrun with two gloo processes, the CLI."""
import json, os, signal, subprocess, sys, time
from pathlib import Path
import pytest, torch
from conftest import ROOT, run
from steerable_nb.train import read_checkpoint, load_checkpoint

TINY = dict(image_size=16, epochs=3, batch_size=64)

def flags(cfg: dict) -> list[str]:
    return [a for k, v in cfg.items() for a in (f'--{k}', str(v))]

ONE_THREAD = {'OMP_NUM_THREADS': '1'}  # the same thread count everywhere, so float reductions run in the same order

@pytest.fixture(scope='module')
def reference(tmp_path_factory):
    "The uninterrupted run, as a process of its own."
    out = tmp_path_factory.mktemp('ref')
    run(Path(sys.executable).parent / 'steerable_train', *flags({**TINY, 'out_dir': out}), '--quiet', env=ONE_THREAD)
    return load_checkpoint(out)

def assert_same_weights(a: dict, b: dict, atol=1e-6, rtol=1e-5):
    assert a.keys() == b.keys()
    for k in a: torch.testing.assert_close(a[k], b[k], atol=atol, rtol=rtol, msg=lambda m: f"{k}: {m}")

def wait_for_mid_run_checkpoint(path: Path, proc, timeout=120) -> dict:
    "Wait until the training process has written a checkpoint before its end; return that checkpoint."
    t = time.time()
    while time.time() - t < timeout:
        if proc.poll() is not None: pytest.fail(f"training ended (exit {proc.returncode}) before it could be interrupted")
        if path.exists():
            try: return read_checkpoint(path)
            except ValueError: pass
        time.sleep(0.05)
    proc.kill(); pytest.fail('no checkpoint appeared within the time limit')

def start_training(bin_dir, out, **extra):
    cfg = {**TINY, 'out_dir': out, 'checkpoint_every': 3, **extra}
    return subprocess.Popen([bin_dir / 'steerable_train', *flags(cfg), '--quiet'], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, **ONE_THREAD})

def test_sigkill_mid_epoch_then_resume_reaches_the_same_weights(bin_dir, tmp_path, reference):
    proc = start_training(bin_dir, tmp_path)
    state = wait_for_mid_run_checkpoint(tmp_path / 'checkpoint.pt', proc)
    proc.send_signal(signal.SIGKILL); proc.wait(30)
    assert proc.returncode == -signal.SIGKILL
    assert state['epoch'] < TINY['epochs'], 'the process was killed after training had finished'
    p = run(bin_dir / 'steerable_train', *flags({**TINY, 'out_dir': tmp_path, 'checkpoint_every': 3}), '--resume', env=ONE_THREAD)
    assert 'resuming from' in p.stdout and 'checkpoint:' in p.stdout
    resumed = load_checkpoint(tmp_path)
    assert_same_weights(resumed.model.state_dict(), reference.model.state_dict())
    assert [h['epoch'] for h in resumed.history] == [1, 2, 3]

def test_ctrl_c_saves_a_checkpoint_and_resume_continues(bin_dir, tmp_path, reference):
    proc = start_training(bin_dir, tmp_path)
    wait_for_mid_run_checkpoint(tmp_path / 'checkpoint.pt', proc)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and 'interrupted: checkpoint saved' in out + err
    assert 'run the same command with --resume to continue' in err and 'Traceback' not in err
    state = read_checkpoint(tmp_path / 'checkpoint.pt')
    assert state['epoch'] < TINY['epochs']
    run(bin_dir / 'steerable_train', *flags({**TINY, 'out_dir': tmp_path, 'checkpoint_every': 3}), '--resume', env=ONE_THREAD)
    assert_same_weights(load_checkpoint(tmp_path).model.state_dict(), reference.model.state_dict())

def test_torchrun_two_processes_match_one(bin_dir, tmp_path):
    torchrun = bin_dir / 'torchrun'
    if not torchrun.exists(): pytest.fail(f'torchrun not found beside {sys.executable}')
    # Float rounding alone (e.g. 1 vs 2 threads in one process) moves this training apart quickly: 7e-7 relative
    # after 10 SGD steps, 5e-5 after 19, 7e-2 after 25 (measured). So compare one short epoch (9 steps), with
    # SGD (Adam's division by sqrt(v) amplifies rounding in weights whose gradients are ~0).
    cfg = {**TINY, 'epochs': 1, 'batch_size': 128, 'device': 'cpu', 'optimizer': 'sgd', 'lr': 0.05}
    run(bin_dir / 'steerable_train', *flags({**cfg, 'out_dir': tmp_path / 'one'}), '--quiet', env=ONE_THREAD)
    p = run(torchrun, '--standalone', '--nproc_per_node=2', bin_dir / 'steerable_train',
            *flags({**cfg, 'out_dir': tmp_path / 'two'}), '--quiet', env=ONE_THREAD, timeout=600)
    assert p.stdout.count('checkpoint:') == 1  # rank 0 alone reports
    reference, ddp = load_checkpoint(tmp_path / 'one'), load_checkpoint(tmp_path / 'two')
    single, both = reference.model.state_dict(), ddp.model.state_dict()
    assert single.keys() == both.keys()
    for k in single:  # same global batch, same draws: equal up to the order of floating-point reductions
        rel = ((both[k].float() - single[k].float()).norm() / single[k].float().norm().clamp_min(1e-8)).item()
        assert rel < 1e-3, f"{k}: relative distance {rel:.2e} between the torchrun and the single-process weights"
    for key in ('loss', 'train_acc', 'val_acc'):  # logged over the whole global batch, not rank 0's half
        assert abs(ddp.history[-1][key] - reference.history[-1][key]) <= 0.01, key

def test_cli_rejects_bad_values_clearly(bin_dir, tmp_path):
    p = run(bin_dir / 'steerable_train', '--steering', 'rotation', '--out_dir', tmp_path, check=False)
    assert p.returncode != 0 and 'steering must be one of linear, exp, mlp, none' in p.stderr
    assert 'Traceback' not in p.stderr and not (tmp_path / 'checkpoint.pt').exists()
    p = run(bin_dir / 'steerable_train', '--dataset', 'no_such_set', '--out_dir', tmp_path, check=False)
    assert p.returncode != 0 and 'no_such_set' in p.stderr and 'digits' in p.stderr and 'Traceback' not in p.stderr

def test_resume_refuses_a_foreign_checkpoint(bin_dir, tmp_path):
    torch.save({'weight': torch.zeros(2)}, tmp_path / 'checkpoint.pt')
    p = run(bin_dir / 'steerable_train', *flags({**TINY, 'out_dir': tmp_path}), '--resume', check=False)
    assert p.returncode != 0 and 'not a steerable_nb checkpoint' in p.stderr

# ---- nothing lost, nothing silently wrong: every fault ends in one line on stderr, exit status 1, and no lost work

def train_cli(bin_dir, *args, env=None, **cfg):
    "steerable_train with these flags (as a process of its own); never raises on a non-zero exit."
    return run(bin_dir / 'steerable_train', *flags(cfg), *args, env={**ONE_THREAD, **(env or {})}, check=False)

def assert_one_line_error(p, *says):
    assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
    assert 'Traceback' not in p.stderr, p.stderr
    for s in says: assert s in p.stderr, (s, p.stderr)

def test_a_second_run_into_a_busy_or_finished_out_dir_is_refused(bin_dir, tmp_path):
    first = start_training(bin_dir, tmp_path)
    lock, t = tmp_path / '.lock', time.time()
    while not (lock.exists() and f"pid {first.pid}" in lock.read_text()):
        if first.poll() is not None or time.time() - t > 120: pytest.fail(f'the first run did not claim {tmp_path}')
        time.sleep(0.05)
    first.send_signal(signal.SIGSTOP)  # hold it inside its run, so the second surely meets a busy folder
    try: second = train_cli(bin_dir, '--quiet', **TINY, out_dir=tmp_path)
    finally: first.send_signal(signal.SIGCONT)
    assert_one_line_error(second, f"out_dir {tmp_path} is in use by another run (pid {first.pid}")
    first.communicate(timeout=300)
    assert first.returncode == 0
    done = (tmp_path / 'checkpoint.pt').read_bytes()
    again = train_cli(bin_dir, '--quiet', **TINY, out_dir=tmp_path)  # the folder is finished: not overwritten
    assert_one_line_error(again, 'already holds a run', '--resume', '--overwrite')
    assert (tmp_path / 'checkpoint.pt').read_bytes() == done and len(load_checkpoint(tmp_path).history) == TINY['epochs']

ONE_STEP = dict(image_size=16, epochs=1, batch_size=1024, schedule='constant')  # one step per epoch: the diverging
# update is the epoch's last (a constant lr: the cosine schedule of a 1-step epoch ends at 0)

def test_a_diverged_run_is_not_saved_and_resumes_with_a_lower_lr(bin_dir, tmp_path):
    p = train_cli(bin_dir, '--quiet', **ONE_STEP, lr=1e30, out_dir=tmp_path / 'wild')
    assert_one_line_error(p, 'training diverged at epoch 1, step 1: non-finite', 'No checkpoint of this run was written')
    assert not (tmp_path / 'wild' / 'checkpoint.pt').exists()
    out = tmp_path / 'run'  # a run whose last sound checkpoint (epoch 1, lr 0.002) then diverged: see 05_train
    train_cli(bin_dir, '--quiet', **ONE_STEP, out_dir=out)
    p = train_cli(bin_dir, '--resume', **{**ONE_STEP, 'epochs': 2}, lr=1e-3, out_dir=out)
    assert p.returncode == 0 and 'lr 0.002 -> 0.001' in p.stdout, p.stderr
    res = load_checkpoint(out)
    assert [h['epoch'] for h in res.history] == [1, 2] and res.config.lr == 1e-3
    assert all(torch.isfinite(v).all() for v in res.model.state_dict().values() if v.is_floating_point())

@pytest.fixture
def small_disk(tmp_path):
    "A real 2 MB file system (tmpfs), or None where it cannot be mounted (then the test patches the writes)."
    disk = tmp_path / 'disk'
    disk.mkdir()
    if subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', disk], capture_output=True).returncode != 0:
        yield None
        return
    try: yield disk
    finally: subprocess.run(['umount', disk], check=True)

NO_SPACE = """import errno, sys, torch
from steerable_nb import cli, data
write = data.atomic_write
def full(*a, **k): raise RuntimeError('[enforce fail at inline_container.cc] PytorchStreamWriter failed writing file data/0: file write failed')
def no_space(path, content):
    if str(path).endswith(sys.argv[1]): return write(path, lambda f: (_ for _ in ()).throw(OSError(errno.ENOSPC, 'No space left on device')))
    return write(path, content)
if sys.argv[1] == 'checkpoint.pt':  # torch's zip writer fails, and the disk has nothing left
    import shutil
    torch.save, shutil.disk_usage = full, lambda path: shutil._ntuple_diskusage(1 << 30, 1 << 30, 0)
else: data.atomic_write = no_space
import steerable_nb.train as tr; tr.atomic_write = data.atomic_write
cli.train_main(sys.argv[2:])
"""

def test_a_full_disk_is_one_line_and_leaves_no_partial_file(bin_dir, tmp_path, small_disk):
    "2 MB: the default model's checkpoint (about 3 MB) does not fit; a tiny model's (1.2 MB) does, its curves (5 MB) not."
    for name, embed_dim in (('checkpoint.pt', 128), ('curves.html', 8)):
        out = (small_disk or tmp_path) / name.split('.')[0]
        cfg = flags({'image_size': 16, 'epochs': 1, 'batch_size': 64, 'embed_dim': embed_dim, 'out_dir': out})
        if small_disk: p = run(bin_dir / 'steerable_train', *cfg, '--quiet', env=ONE_THREAD, check=False)
        else: p = run(sys.executable, '-c', NO_SPACE, name, *cfg, '--quiet', env=ONE_THREAD, check=False)
        assert_one_line_error(p, f"could not write {out / name}: No space left on device (the disk is full")
        files = sorted(f.name for f in out.iterdir())
        assert not [f for f in files if f.endswith('.tmp')] and name not in files, files  # nothing half-written
        if name == 'curves.html':  # what was written before is whole
            assert json.loads((out / 'history.json').read_text())[0]['epoch'] == 1
            assert len(load_checkpoint(out).history) == 1

def test_stale_temporaries_go_and_history_is_strict_json(bin_dir, tmp_path):
    dead = subprocess.Popen([sys.executable, '-c', 'pass'])
    dead.wait()
    stale = tmp_path / f'.checkpoint.pt.{dead.pid}-0123abcd.tmp'  # what a SIGKILL mid-write leaves
    stale.write_bytes(b'half a checkpoint')
    train_cli(bin_dir, '--quiet', image_size=16, epochs=1, batch_size=64, out_dir=tmp_path)
    assert not stale.exists()
    def no_nan(word): raise AssertionError(f'history.json holds {word}: not JSON')
    assert json.loads((tmp_path / 'history.json').read_text(), parse_constant=no_nan)[0]['epoch'] == 1

def image_folder(root: Path, classes=('cat', 'dog'), per_class=8):
    from PIL import Image
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            Image.new('RGB', (12, 12), (200 * c, 20 * i, 0)).save(root / name / f'{i}.png')
    return root

def test_bad_inputs_are_named_in_one_line(bin_dir, tmp_path):
    "Each a process of its own (four at a time): the config's own checks are tested in 05_train, the folder's in 01_data."
    a_file = tmp_path / 'a_file'
    a_file.write_text('')
    broken = image_folder(tmp_path / 'broken')
    for i in range(4):  # enough that the training split holds some
        (broken / 'cat' / f'empty{i}.png').write_bytes(b'')
        (broken / 'dog' / f'notes{i}.png').write_text('not an image')
    one_class = image_folder(tmp_path / 'one', classes=('cat',), per_class=16)
    folder = dict(image_size=16, epochs=1, batch_size=4)
    runs = iter(range(100))  # a folder per process: they run side by side
    train = lambda *args, **cfg: [bin_dir / 'steerable_train', *args, *flags(
        {'out_dir': tmp_path / f'run{next(runs)}', 'epochs': 1, 'image_size': 16, **cfg})]
    cases = [(train('--quiet', lam='nan'), {}, 'steerable_train: error: --lam must be a finite number; got nan'),
             (train('--quiet', split_seed=-1), {}, 'steerable_train: error: --split_seed must be at least 0; got -1'),
             (train('--quiet', device='bogus'), {}, "--device must be auto, cpu, cuda, cuda:<index> or another torch"),
             (train('--quiet', embed_dim=10**6), {}, '--embed_dim 1000000 makes a model of'),
             (train('--quiet', out_dir=a_file), {}, f"out_dir {a_file} is a file"),
             (train('--quiet', out_dir=a_file / 'run'), {}, f"out_dir {a_file / 'run'} lies under a file ({a_file})"),
             (train('--quiet', dataset='fashion_mnist', data_root=tmp_path / 'missing'), {}, 'is not an existing folder'),
             (train('--quiet', dataset='fashion_mnist'), {'STEERABLE_NB_CACHE': str(a_file)},
              f"STEERABLE_NB_CACHE={a_file} is a file"),
             (train('--quiet', dataset=broken, **folder), {}, f"image files of {broken} could not be read: "),
             (train('--quiet', dataset=one_class, **folder), {}, 'holds images of 1 class (cat): supervised training needs'),
             ([bin_dir / 'steerable_speed', '--which', 'nope'], {}, "steerable_speed: error: unknown benchmark 'nope'")]
    def start(cmd, env): return subprocess.Popen(list(map(str, cmd)), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                                 text=True, env={**os.environ, **ONE_THREAD, **env})
    for i in range(0, len(cases), 4):
        batch = [(start(cmd, env), says) for cmd, env, says in cases[i:i + 4]]
        for proc, says in batch:
            out, err = proc.communicate(timeout=300)
            assert_one_line_error(subprocess.CompletedProcess(proc.args, proc.returncode, out, err), says)
            if 'could not be read' in says:  # each file named, with the reason
                assert '.png (an empty file)' in err or '.png (not an image PIL can read)' in err
    p = train_cli(bin_dir, '--debug', device='bogus', out_dir=tmp_path / 'run')  # --debug: the traceback, for bug reports
    assert p.returncode == 1 and 'Traceback' in p.stderr and 'ConfigError' in p.stderr
    assert not list(tmp_path.rglob('checkpoint.pt'))
