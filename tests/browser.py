"""Headless Chromium for the browser tests (tests/test_docs.py, tests/test_jupyterlab.py), driven by Playwright.

Playwright comes from PyPI and is pointed at an installed Chromium: never run `playwright install` (it downloads a
browser). The browser is `$STEERABLE_NB_CHROMIUM` (`$STEERABLE_CHROMIUM` is accepted as its older name), else Debian's
`/usr/bin/chromium` (`apt-get install chromium`), else Google Chrome (GitHub's Ubuntu runners have it).

Where something a browser test needs is missing, `missing` skips the test with a message saying what to install; under
`CI=true` it fails the test instead, so CI cannot pass without running it."""
import os, shutil
from contextlib import contextmanager
from pathlib import Path
import pytest

# Without the networking flags Chromium's own background connections are refused in bursts on our machines.
FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
         '--disable-sync', '--no-first-run']
CANDIDATES = ('/usr/bin/chromium', '/usr/bin/google-chrome', 'chromium', 'google-chrome')
ENV_VARS = ('STEERABLE_NB_CHROMIUM', 'STEERABLE_CHROMIUM')  # the second is the older name


def in_ci() -> bool:
    "Whether the tests run in CI (`CI` set to anything but '', '0' or 'false')."
    return os.environ.get('CI', '').strip().lower() not in ('', '0', 'false', 'no')


def missing(what: str  # what the test needs and how to get it
           ):
    "Skip the test for want of `what`; under CI fail it, since CI must install everything."
    if in_ci():
        pytest.fail(f"{what} (CI is set: .ci/run must install it)")
    pytest.skip(what)


def chromium_path() -> str | None:
    "The Chromium to drive: the one an environment variable names, else the first installed candidate."
    named = next((os.environ[v] for v in ENV_VARS if os.environ.get(v)), None)
    for c in ([named] if named else CANDIDATES):
        path = shutil.which(c) or (c if Path(c).is_file() else None)
        if path:
            return path
    return None


def chromium() -> str:
    "The Chromium to drive, or skip (fail under CI) saying how to install it."
    path = chromium_path()
    if path is None:
        named = next((f"${v}={os.environ[v]!r}" for v in ENV_VARS if os.environ.get(v)), None)
        where = f"Chromium not found at {named}" if named else f"no Chromium ({', '.join(CANDIDATES[:2])})"
        missing(f"{where}: install Debian's (apt-get update && apt-get install -y chromium) or set "
                "STEERABLE_NB_CHROMIUM to a Chromium binary; never run `playwright install`")
    return path


@contextmanager
def launch(timeout_ms: float = 60_000  # the longest Chromium may take to start
          ):
    "Start headless Chromium through Playwright; yield the browser; close it afterwards."
    exe = chromium()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("the playwright package (pip install -e '.[dev]'); never run `playwright install`")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=exe, args=FLAGS, headless=True, timeout=timeout_ms)
        try:
            yield browser
        finally:
            browser.close()
