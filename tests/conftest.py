"""pytest runs what notebooks do badly: subprocesses, console scripts, install checks. Notebook tests run with nbdev_test."""
import os, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]

def run(*args, cwd=ROOT, timeout=300, env=None, check=True):
    "Run a command with a bounded wait; on failure show its output."
    e = {**os.environ, 'PYTHONUNBUFFERED': '1', **(env or {})}
    p = subprocess.run(list(map(str, args)), cwd=cwd, capture_output=True, text=True, timeout=timeout, env=e)
    if check and p.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, args))} exited {p.returncode}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}")
    return p

@pytest.fixture
def bin_dir():
    "Folder of the console scripts installed beside this Python."
    return Path(sys.executable).parent
