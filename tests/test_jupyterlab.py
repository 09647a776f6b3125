"""The explorer in a real JupyterLab, driven by a real browser.

The test trains a tiny model, writes a two-cell notebook that builds a `SteeringExplorer` from its checkpoint, starts
`jupyter lab` on 127.0.0.1 with a token (its settings, workspaces and runtime files in a temporary folder, news
off), opens the notebook in headless Chromium through Playwright, runs the cell, drags a slider with the mouse and
moves it with the keyboard, and checks that the plotly trace in the page follows. The explorer is in side-by-side
mode, with an invariant baseline. It checks what a person can see (both numbers of a slider named in its label, the
figure's title and subtitle, the paths' ends labelled, f(x) named, the readout's caption, the gallery's numbers
labelled), measures key press -> `plotly_afterplot` over 20 moves (printed as a benchmark, never asserted), and saves
its screenshots under the test's tmp_path and in steerable_outputs/screenshots/ (git-ignored) for a person to look at.

The browser comes from tests/browser.py: Debian's Chromium (`STEERABLE_NB_CHROMIUM` names another binary) driven by
Playwright from PyPI, never `playwright install`. Where either is missing the test is skipped with a message saying
what to install, and fails instead when `CI` is set, so CI cannot pass without running it."""
import json, os, re, shutil, signal, socket, statistics, subprocess, sys, time, secrets, urllib.request
from pathlib import Path
import pytest
from conftest import ROOT
from browser import launch

WAIT_MS = 90_000  # the longest any single wait in the page may take

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]

NOTEBOOK_CELLS = [
    "from steerable_nb.widgets import SteeringExplorer\n"
    "ex = SteeringExplorer({checkpoint!r}, baseline={baseline!r}, n_images=3, n_gallery=32)\n"
    "ex",
    "import statistics, torch\n"
    "print(f'kernel: {{len(ex.update_times)}} updates, median {{1e3 * statistics.median(ex.update_times):.1f}} ms, '\n"
    "      f'brightness {{ex.sliders[\"brightness\"].value:+.2f}}')",
]

def _notebook(checkpoint: Path, baseline: Path) -> dict:
    cells = [dict(cell_type='code', id=f'cell{i}', metadata={}, execution_count=None, outputs=[],
                  source=src.format(checkpoint=str(checkpoint), baseline=str(baseline)))
             for i, src in enumerate(NOTEBOOK_CELLS)]
    return dict(cells=cells, nbformat=4, nbformat_minor=5,
                metadata=dict(kernelspec=dict(display_name='Python 3', language='python', name='python3')))

@pytest.fixture
def lab(tmp_path):
    "A JupyterLab server on 127.0.0.1 serving a notebook that explores a tiny trained model; stopped afterwards."
    pytest.importorskip('jupyterlab', reason="jupyterlab is not installed (a dev requirement)")
    from steerable_nb.train import train, TrainConfig
    from steerable_nb.widgets import torch_threads
    quick = dict(image_size=16, epochs=1, batch_size=64, embed_dim=32)
    with torch_threads(1):  # a few small steps: one thread is fastest on a shared CPU
        res = train(TrainConfig(**quick, out_dir=str(tmp_path / 'run')), progress=False, max_steps=3)
        inv = train(TrainConfig(**quick, steering='none', out_dir=str(tmp_path / 'inv')), progress=False, max_steps=3)
    root = tmp_path / 'lab'; root.mkdir()
    (root / 'explore.ipynb').write_text(json.dumps(_notebook(res.checkpoint, inv.checkpoint), indent=1))
    home = tmp_path / 'jupyter'
    settings = home / 'settings' / '@jupyterlab' / 'apputils-extension'
    settings.mkdir(parents=True)
    (settings / 'notification.jupyterlab-settings').write_text(json.dumps({'fetchNews': 'false', 'checkForUpdates': False}))
    env = {**os.environ, 'JUPYTERLAB_SETTINGS_DIR': str(home / 'settings'), 'JUPYTERLAB_WORKSPACES_DIR': str(home / 'ws'),
           'JUPYTER_RUNTIME_DIR': str(home / 'runtime'), 'JUPYTER_CONFIG_DIR': str(home / 'config'),
           'OMP_NUM_THREADS': '1', 'PYTHONUNBUFFERED': '1'}
    port, token = _free_port(), secrets.token_hex(16)
    log = open(tmp_path / 'jupyter.log', 'w')
    args = ['--no-browser', '--allow-root', '--ip=127.0.0.1', f'--port={port}', '--ServerApp.port_retries=0',
            f'--ServerApp.token={token}', f'--ServerApp.root_dir={root}', '--LabApp.news_url=None',
            '--LabApp.check_for_updates_class=jupyterlab.handlers.announcements.NeverCheckForUpdate']
    proc = subprocess.Popen([sys.executable, '-m', 'jupyterlab', *args], cwd=root, env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    url = f'http://127.0.0.1:{port}'
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"jupyter lab exited with {proc.returncode}:\n{(tmp_path / 'jupyter.log').read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f'{url}/api/status?token={token}', timeout=5) as r:
                    if r.status == 200: break
            except OSError: pass
            if time.monotonic() > deadline:
                pytest.fail(f"jupyter lab did not answer within 60 s:\n{(tmp_path / 'jupyter.log').read_text()[-3000:]}")
            time.sleep(0.5)
        yield dict(url=url, token=token, root=root, log=tmp_path / 'jupyter.log')
    finally:
        if proc.poll() is None:
            proc.terminate()  # SIGTERM: jupyter stops cleanly and shuts its kernels down
            try: proc.wait(timeout=20)
            except subprocess.TimeoutExpired: proc.kill(); proc.wait(timeout=10)
        try: os.killpg(proc.pid, signal.SIGKILL)  # whatever the server started and left behind (its kernel)
        except ProcessLookupError: pass
        log.close()

TRACE_JS = """() => { const g = document.querySelector('.js-plotly-plot');
  return g && g.data && g.data.length > 5 ? [g.data[4].x[0], g.data[4].y[0], g.data[5].x[0], g.data[5].y[0]] : null; }"""

def _wait_change(page, before, what: str, timeout_s: float = 30):
    "Poll the plotly trace in the page until it differs from `before`."
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        now = page.evaluate(TRACE_JS)
        if now is not None and now != before: return now
        page.wait_for_timeout(200)
    raise AssertionError(f"the plotly trace did not change within {timeout_s:.0f} s after {what} (still {before})")

# Latency of a move, as a person feels it: from the key press (keydown, seen by the page) to plotly's
# `plotly_afterplot` that shows the moved point, and to the readout's change. Recorded in the page, so the
# times are the browser's own clock.
PROBE_JS = """() => { const plots = [...document.querySelectorAll('.js-plotly-plot')];
  const readout = document.querySelector('.steering-readout').closest('.widget-html-content') ||
                  document.querySelector('.steering-readout').parentElement;
  const label = document.querySelector('.widget-slider .widget-label');
  const p = window.__probe = {after: [], keys: [], readout: [], label: []};
  new MutationObserver(() => p.label.push(performance.now())).observe(label,
      {childList: true, subtree: true, characterData: true});
  plots.forEach((g, i) => g.on('plotly_afterplot', () => p.after.push([performance.now(), g.data[4].x[0], i])));
  document.addEventListener('keydown', () => p.keys.push(performance.now()), true);
  new MutationObserver(() => p.readout.push(performance.now())).observe(readout,
      {childList: true, subtree: true, characterData: true}); }"""

ALL_JS = """() => [...document.querySelectorAll('.js-plotly-plot')].map(g => g.data[4].x[0])"""

def move_latencies(page, handle, n: int = 20, key: str = 'ArrowRight') -> dict:
    """Milliseconds from each of `n` key presses on the first slider's `handle` to the first figure's redraw that shows
    the move (plotly_afterplot), to every figure's, to the readout's change and to the slider label's."""
    page.evaluate(PROBE_JS)
    handle.focus()
    plot, every, readout, label, draws = [], [], [], [], []
    for _ in range(n):
        xs = page.evaluate(ALL_JS)
        k, a, r, l = page.evaluate("() => [__probe.keys.length, __probe.after.length, __probe.readout.length, "
                                   "__probe.label.length]")
        page.keyboard.press(key)
        page.wait_for_function("([a, x]) => __probe.after.slice(a).some(e => e[2] === 0 && e[1] !== x)",
                               arg=[a, xs[0]])
        page.wait_for_timeout(400)  # let the kernel finish (plotly's deltas back to Python) before the next press
        t = page.evaluate("([k, a, r, l, xs]) => [__probe.keys[k], "
                          "__probe.after.slice(a).find(e => e[2] === 0 && e[1] !== xs[0])[0], "
                          "__probe.readout[r], __probe.label[l], "
                          "Math.max(...xs.map((x, i) => "  # a figure whose point did not move is not redrawn
                          "(__probe.after.slice(a).find(e => e[2] === i && e[1] !== x) || [0])[0]))]",
                          [k, a, r, l, xs])
        plot.append(t[1] - t[0])
        every.append(t[4] - t[0])
        draws.append(page.evaluate("a => __probe.after.length - a", a) / len(xs))  # redraws per figure and move
        if t[2] is not None: readout.append(t[2] - t[0])  # (a move that leaves the readout's digits alone: none)
        if t[3] is not None: label.append(t[3] - t[0])
    return dict(plot=plot, every=every, readout=readout, label=label, draws=statistics.mean(draws))

def _summary(ms: list[float]) -> str:
    s = sorted(ms)
    q1, q3 = s[len(s) // 4], s[3 * len(s) // 4]
    return f"median {statistics.median(s):.0f} ms (min {s[0]:.0f}, quartiles {q1:.0f}–{q3:.0f}, max {s[-1]:.0f})"

def _slider_label(page, index: int) -> str:
    return page.locator('.widget-slider').nth(index).locator('.widget-label').first.inner_text()

def test_explorer_in_jupyterlab(lab, tmp_path):
    shots = tmp_path / 'screenshots'
    shots.mkdir()
    with launch(timeout_ms=60_000) as browser:
        try:
            page = browser.new_page(viewport={'width': 1500, 'height': 1300})
            page.set_default_timeout(WAIT_MS)
            errors = []
            page.on('pageerror', lambda e: errors.append(str(e)))
            page.goto(f"{lab['url']}/lab/tree/explore.ipynb?token={lab['token']}", wait_until='domcontentloaded')
            # the notebook is loaded (both cells) and its kernel is idle: only then run, or JupyterLab asks for a kernel
            page.wait_for_function("""() => document.querySelectorAll('.jp-Notebook .jp-Cell').length === 2 &&
                /\\bIdle\\b/.test((document.querySelector('#jp-main-statusbar') || document.body).innerText)""")
            page.locator('.jp-Notebook .jp-Cell').nth(0).locator('.jp-InputArea-editor').click()
            page.keyboard.press('Shift+Enter')
            page.wait_for_selector('.widget-slider', state='visible')
            page.wait_for_selector('.js-plotly-plot', state='visible')
            # side by side: a figure of six traces for the steerable model, one for the invariant baseline
            page.wait_for_function("() => { const g = [...document.querySelectorAll('.js-plotly-plot')]; "
                                   "return g.length === 2 && g.every(f => f.data && f.data.length === 6); }")
            page.screenshot(path=shots / '1-explorer.png', full_page=True)
            start = page.evaluate(TRACE_JS)
            assert start is not None
            assert _slider_label(page, 0) == 'brightness ×1.00 · θ = +0.00', _slider_label(page, 0)
            assert page.locator('.widget-slider .widget-readout:visible').count() == 0  # no second, unlabelled number
            # every mark explains itself: title and subtitle, the paths' ends, f(x), the readout's caption, the gallery
            seen = page.evaluate("""() => [...document.querySelectorAll('.js-plotly-plot')].map(g => ({
                title: g.querySelector('.gtitle').textContent,
                text: [...g.querySelectorAll('.textpoint text')].map(t => t.textContent),
                axes: [...g.querySelectorAll('.g-xtitle, .g-ytitle')].map(t => t.textContent)}))""")
            assert [f['title'] for f in seen] == ['steerable (exp)', 'invariant (M = I)'], seen
            for f, n in zip(seen, (2, 1)):  # the paths' ends named (the invariant one-point path's: not), f(x) named,
                assert f['text'].count('θ = −1') == n and f['text'].count('θ = +1') == n and 'f(x)' in f['text'], f
                assert len(f['axes']) == 2 and all(re.fullmatch(r'PC\d \d+%', a) for a in f['axes']), f  # the axes
            side = page.locator('.jp-Notebook .jp-Cell').nth(0).locator('.jp-OutputArea-output').inner_text()
            assert 'the paths: brightness from θ = −1 to +1' in side and 'PCA' in side, side  # the caption
            assert '0 = on the true point, 1 = no better than M = I' in side, side
            assert side.count('cos 0.') + side.count('cos 1.') + side.count('cos -') == 20, side  # 4 rows of 5

            # drag the brightness handle to about 3/4 of its rail with the mouse
            slider = page.locator('.widget-slider').nth(0)
            handle, rail = slider.locator('.noUi-handle'), slider.locator('.noUi-base')
            hb, rb = handle.bounding_box(), rail.bounding_box()
            page.mouse.move(hb['x'] + hb['width'] / 2, hb['y'] + hb['height'] / 2)
            page.mouse.down()
            page.mouse.move(rb['x'] + rb['width'] * 0.75, hb['y'] + hb['height'] / 2, steps=8)
            page.mouse.up()
            dragged = _wait_change(page, start, 'dragging the brightness slider')
            page.wait_for_function("() => !document.querySelector('.widget-slider .widget-label').innerText"
                                   ".startsWith('brightness ×1.00')")
            label = _slider_label(page, 0)
            assert re.fullmatch(r'brightness ×1\.\d\d · θ = \+0\.\d\d', label), label  # both numbers, each named
            page.screenshot(path=shots / '2-dragged.png', full_page=True)

            # then step it down with the keyboard (arrow keys move the focused handle)
            handle.focus()
            for _ in range(10): page.keyboard.press('ArrowLeft')
            _wait_change(page, dragged, 'pressing ArrowLeft on the brightness slider')
            page.wait_for_timeout(1000)  # let the last updates land before the picture
            page.screenshot(path=shots / 'jupyterlab.png', full_page=True)
            # the invariant panel's steered path is flat: every point of its trace 1 is f(x)
            flat = page.evaluate("() => { const d = document.querySelectorAll('.js-plotly-plot')[1].data[1]; "
                                 "return d.x.every(v => Math.abs(v - d.x[0]) < 1e-6) && "
                                 "d.y.every(v => Math.abs(v - d.y[0]) < 1e-6); }")
            assert flat, "the invariant baseline's steered path should be a single point"

            # the benchmark (printed, not asserted): key press -> redraw, and -> readout, one move at a time
            lat = move_latencies(page, handle)
            print(f"browser, key press -> plotly_afterplot: {_summary(lat['plot'])}; -> every figure redrawn: "
                  f"{_summary(lat['every'])}; "
                  f"-> readout: {_summary(lat['readout'])}; -> slider label: {_summary(lat['label'])} "
                  f"({len(lat['plot'])} moves, {lat['draws']:.1f} redraws per figure and move)")

            # the kernel's own account: how many updates, and their median time
            page.locator('.jp-Notebook .jp-Cell').nth(1).locator('.jp-InputArea-editor').click()
            page.keyboard.press('Shift+Enter')
            out = page.locator('.jp-Notebook .jp-Cell').nth(1).locator('.jp-OutputArea-output')
            out.first.wait_for(state='visible')
            report = out.first.inner_text().strip()
            print(report)
            assert report.startswith('kernel:'), report
            assert int(report.split()[1]) >= 3, report  # the first draw, the drag, the key presses
            theta = _slider_label(page, 0).split('θ = ')[1]
            assert report.endswith(f'brightness {theta}'), (report, theta)  # the page and the kernel agree
            text = page.locator('.jp-Notebook').inner_text()
            assert 'Traceback' not in text, text[-3000:]
            assert not errors, errors
            page.screenshot(path=shots / '4-final.png', full_page=True)
        except Exception as e:
            try:
                page.screenshot(path=shots / 'failure.png', full_page=True)
                seen = page.locator('body').inner_text()[-2000:]
            except Exception: seen = '(page unreadable)'
            raise AssertionError(f"{e}\nscreenshot: {shots / 'failure.png'}\npage text (end): {seen}\n"
                                 f"server log (end): {lab['log'].read_text()[-2000:]}") from e
    out_dir = ROOT / 'steerable_outputs' / 'screenshots'  # git-ignored; the README names it
    out_dir.mkdir(parents=True, exist_ok=True)
    for f in shots.glob('*.png'): shutil.copy(f, out_dir / f'jupyterlab-{f.name}')
