"""Training as real processes: SIGKILL and Ctrl-C mid-run then resume, torchrun with two gloo processes, the CLI."""
import os, signal, subprocess, sys, time
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
    assert proc.returncode != 0 and 'interrupted: checkpoint saved' in out + err
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
