"""The offline docs site (`steerable_docs`), built and opened in headless Chromium.

Playwright (from PyPI) drives Debian's chromium at /usr/bin/chromium; never `playwright install`. Outside CI a
missing browser, Playwright or npm skips these tests with a message; in CI (CI=true) it fails them."""
import contextlib, functools, http.server, json, os, re, shutil, sys, threading
from pathlib import Path
from urllib.parse import urldefrag
import pytest
from conftest import ROOT, run

# Debian's chromium; GitHub's Ubuntu runners have Google Chrome instead. STEERABLE_NB_CHROMIUM overrides both.
CHROMIUM = os.environ.get('STEERABLE_NB_CHROMIUM') or next(
    (p for p in ('/usr/bin/chromium', '/usr/bin/google-chrome') if Path(p).exists()), '/usr/bin/chromium')
FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
         '--disable-sync', '--no-first-run']
WAIT_MS = 60_000  # the longest any page may take to load and draw its figures and widgets

def _missing(what: str):
    msg = f"the docs tests need {what}"
    if os.environ.get('CI', '').lower() in ('true', '1'): pytest.fail(msg + " (CI=true: .ci/run must install it)")
    pytest.skip(msg)

@pytest.fixture(scope='module')
def browser():
    if not Path(CHROMIUM).exists(): _missing(f"Chromium at {CHROMIUM} (apt-get install chromium)")
    try: from playwright.sync_api import sync_playwright
    except ImportError: _missing("the playwright package (pip install -e '.[dev]'; do not run `playwright install`)")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS, timeout=WAIT_MS)
        try: yield b
        finally: b.close()

@pytest.fixture(scope='module')
def npm():
    if shutil.which('npm') is None: _missing("npm, to fetch the pinned JavaScript packages (apt-get install npm)")

class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args): pass

@contextlib.contextmanager
def serve(folder):
    "Serve `folder` on 127.0.0.1 (a free port) from a thread; yields the base URL; stops the server on exit."
    srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), functools.partial(_Quiet, directory=str(folder)))
    t = threading.Thread(target=srv.serve_forever, kwargs=dict(poll_interval=0.1), daemon=True)
    t.start()
    try: yield f'http://127.0.0.1:{srv.server_port}/'
    finally:
        srv.shutdown(); srv.server_close(); t.join(timeout=10)

def site_pages(site: Path) -> list[str]:
    return sorted(p.relative_to(site).as_posix() for p in site.rglob('*.html') if p.relative_to(site).parts[0] != 'static')

def open_page(browser, base: str, page: str, n_figures: int = 0):
    """Open `page` and wait (bounded) until its widgets and (at least `n_figures`) plotly figures are drawn.
    Returns the Playwright page and what went wrong: console errors, page errors, failed or off-site requests."""
    pg, problems = browser.new_page(), []
    pg.set_default_timeout(WAIT_MS)
    pg.on('console', lambda m: problems.append(f'console {m.type}: {m.text}') if m.type == 'error' else None)
    pg.on('pageerror', lambda e: problems.append(f'page error: {e}'))
    pg.on('requestfailed', lambda r: problems.append(f'request failed: {r.url[:150]} ({r.failure})'))
    pg.on('request', lambda r: None if r.url.startswith((base, 'data:', 'blob:')) else problems.append(f'off-site request: {r.url[:150]}'))
    pg.goto(base + page, wait_until='load')
    # widget views are replaced by the rendered widget; plotly divs get their svg once drawn
    pg.wait_for_function("""() => document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]').length
                                  <= document.querySelectorAll('.jupyter-widgets').length""")
    pg.wait_for_function("""n => { const figs = [...document.querySelectorAll('.js-plotly-plot')];
                                    return figs.length >= n && figs.every(d => d.querySelector('svg.main-svg')); }""", arg=n_figures)
    pg.wait_for_timeout(500)  # late console errors
    return pg, problems

def widget_models(page_html: str, model_name: str) -> list:
    "The saved widget models called `model_name` in a page."
    m = re.search(r'<script type="application/vnd.jupyter.widget-state\+json">(.*?)</script>', page_html, re.S)
    state = json.loads(m.group(1))['state'] if m else {}
    return [k for k, v in state.items() if v['model_name'] == model_name]

def check_site(browser, site: Path, unbuilt: set = frozenset()):
    """Open every page: no errors, figures drawn, sidebar on every page linking every page, and same-site links resolve
    (but links to `unbuilt`: pages of the full site that a partial build leaves out)."""
    pages = site_pages(site)
    report = {}
    with serve(site) as base:
        for page in pages:
            raw = (site / page).read_text(encoding='utf-8')
            n_static = raw.count('class="plotly-graph-div"')
            n_fw = len(widget_models(raw, 'AnyModel'))  # every anywidget in our pages is a plotly FigureWidget
            pg, problems = open_page(browser, base, page, n_static + n_fw)
            try:
                n_views = pg.locator('script[type="application/vnd.jupyter.widget-view+json"]').count()
                figs = pg.locator('.js-plotly-plot').count()
                assert figs == n_static + n_fw, f"{page}: {figs} plotly figures drawn; the page holds {n_static} + {n_fw} FigureWidgets"
                assert pg.locator('.js-plotly-plot svg.main-svg').count() >= figs
                assert 'Error displaying widget' not in pg.inner_text('body'), f"{page}: a widget failed to render"
                assert pg.locator('mjx-merror').count() == 0, f"{page}: MathJax could not typeset some math"
                nav = pg.eval_on_selector_all('nav.sn-sidebar a', 'els => els.map(e => e.href)')
                on_site = {urldefrag(h).url for h in nav}
                assert {base + p for p in pages} <= on_site, f"{page}: the sidebar misses {sorted({base + p for p in pages} - on_site)}"
                links = pg.eval_on_selector_all('a[href]', 'els => els.map(e => e.href)')
                urls = {urldefrag(h).url for h in links if h.startswith(base)}
                for url in sorted(u for u in urls if u[len(base):] not in unbuilt):
                    r = pg.request.get(url, timeout=WAIT_MS)
                    assert r.ok, f"{page} links to {url}: HTTP {r.status}"
                assert problems == [], f"{page}:\n" + '\n'.join(problems)
                report[page] = dict(figures=figs, widgets=n_views, math=pg.locator('mjx-container').count())
            finally: pg.close()
    return report

def _nb(*cells):
    mk = lambda t, s: dict(cell_type=t, source=s, metadata={}, **(dict(outputs=[], execution_count=None) if t == 'code' else {}))
    return dict(cells=[mk(*c) for c in cells], metadata=dict(kernelspec=dict(name='python3', display_name='Python 3', language='python')),
                nbformat=4, nbformat_minor=5)

REPO_NBS = ['index', '00_augment'] + (['07_widgets'] if (ROOT / 'nbs' / '07_widgets.ipynb').exists() else [])

@pytest.fixture(scope='module')
def repo_site(tmp_path_factory, npm):
    "Pages of this repository: the home page, a library notebook with figures, and the widgets notebook if there is one."
    out = tmp_path_factory.mktemp('docs') / '_docs'
    p = run(Path(sys.executable).parent / 'steerable_docs', *REPO_NBS, '--out', out, '--skip_slow', timeout=1500)
    assert 'wrote' in p.stdout, p.stdout
    return out

@pytest.fixture(scope='module')
def widget_site(tmp_path_factory, npm):
    "A scratch project whose tutorial holds live widgets: a slider jslinked to a text box, a FigureWidget, a figure."
    root = tmp_path_factory.mktemp('proj')
    shutil.copy2(ROOT / 'settings.ini', root / 'settings.ini')
    (root / 'nbs' / 'tutorials').mkdir(parents=True)
    (root / 'nbs' / 'sidebar.yml').write_text('website:\n  sidebar:\n    contents:\n      - index.ipynb\n'
                                              '      - section: Tutorials\n        contents:\n          - tutorials/01_widgets.ipynb\n')
    (root / 'nbs' / 'index.ipynb').write_text(json.dumps(_nb(('markdown', '# Scratch\n> Home page with math: $M(\\theta) f(x)$'))))
    (root / 'nbs' / 'tutorials' / '01_widgets.ipynb').write_text(json.dumps(_nb(
        ('markdown', '# Widgets\n> Live without a kernel'),
        ('code', "import ipywidgets as w, plotly.graph_objects as go\n"
                 "a, b = w.FloatSlider(value=0.5, min=0, max=1, step=0.1, description='a'), w.FloatText(description='b')\n"
                 "w.jslink((a, 'value'), (b, 'value'))\nw.VBox([a, b, w.Button(description='reset', icon='undo')])"),
        ('code', "fig = go.FigureWidget(go.Scatter(x=[0, 1, 2], y=[1, 3, 2], name='widget'))\nfig"),
        ('code', "#| echo: false\ngo.Figure(go.Bar(x=['a', 'b'], y=[1, 2]))"),
        ('code', "hidden = go.FigureWidget()  # never shown: left out of the page's widget state"))))
    out = root / '_docs'
    run(Path(sys.executable).parent / 'steerable_docs', '--no_cache', cwd=root, timeout=600)
    return out

def test_docs_cli_errors(bin_dir):
    assert '--skip_slow' in run(bin_dir / 'steerable_docs', '--help').stdout
    p = run(bin_dir / 'steerable_docs', 'no_such_notebook', check=False)
    assert p.returncode == 1 and "steerable_docs: error: no notebook 'no_such_notebook'" in p.stderr, p.stderr

def test_failing_notebook_is_reported_and_the_rest_is_built(tmp_path, bin_dir, npm):
    shutil.copy2(ROOT / 'settings.ini', tmp_path / 'settings.ini')
    (tmp_path / 'nbs').mkdir()
    (tmp_path / 'nbs' / 'index.ipynb').write_text(json.dumps(_nb(('markdown', '# Home\n> fine'), ('code', '1 + 1'))))
    (tmp_path / 'nbs' / '01_broken.ipynb').write_text(json.dumps(_nb(('markdown', '# Broken\n> fails'), ('code', '1 / 0'))))
    p = run(bin_dir / 'steerable_docs', '--no_cache', cwd=tmp_path, check=False, timeout=600)
    assert p.returncode == 1, p.stdout + p.stderr
    assert '1 notebook(s) failed (01_broken.ipynb)' in p.stderr and 'ZeroDivisionError' in p.stderr, p.stderr
    assert '\x1b[' not in p.stderr
    assert site_pages(tmp_path / '_docs') == ['index.html']

def test_repo_pages_open_cleanly(repo_site, browser):
    pages = site_pages(repo_site)
    assert {'index.html', 'augment.html'} <= set(pages), pages
    assert (repo_site / 'static' / 'html-manager' / 'embed-amd.js').exists()
    from steerable_nb.docs import docs_notebooks, page_name
    full = {page_name(p.relative_to(ROOT / 'nbs')) for p in docs_notebooks(ROOT / 'nbs')}
    report = check_site(browser, repo_site, unbuilt=full - set(pages))
    assert report['augment.html']['figures'] >= 1, report
    assert report['index.html']['math'] >= 1, report
    if 'widgets.html' in report: assert report['widgets.html']['widgets'] >= 1, report

def test_rebuild_reuses_executed_notebooks(repo_site, bin_dir):
    "Nothing changed since the fixture's build: every notebook comes from the cache (the library must not change meanwhile)."
    p = run(bin_dir / 'steerable_docs', *REPO_NBS, '--out', repo_site, '--skip_slow', timeout=600)
    assert p.stdout.count(': cached') == len(REPO_NBS), p.stdout

def test_widget_pages_are_interactive_offline(widget_site, browser):
    assert site_pages(widget_site) == ['index.html', 'tutorials/widgets.html']
    report = check_site(browser, widget_site)
    assert report['tutorials/widgets.html'] == dict(figures=2, widgets=2, math=0), report
    assert len(widget_models((widget_site / 'tutorials' / 'widgets.html').read_text(), 'AnyModel')) == 1
    assert len(widget_models((widget_site / 'tutorials' / 'widgets.html').read_text(), 'LinkModel')) == 1
    with serve(widget_site) as base:
        pg, problems = open_page(browser, base, 'tutorials/widgets.html', 2)
        try:
            text = pg.locator('.widget-text input')
            assert text.input_value() == '0.5'
            pg.locator('.widget-slider .noUi-handle').focus()
            pg.keyboard.press('ArrowRight')  # the jslink runs in the browser: no kernel needed
            pg.wait_for_function("() => document.querySelector('.widget-text input').value === '0.6'", timeout=10_000)
            traces = pg.evaluate("() => [...document.querySelectorAll('.js-plotly-plot')].map(d => d._fullData.map(t => t.type))")
            assert sorted(traces) == [['bar'], ['scatter']], traces
            pg.locator('nav.sn-sidebar a', has_text='Scratch').click()  # sidebar navigation from a subfolder
            pg.wait_for_url(base + 'index.html')
            assert pg.title() == 'Scratch'
            assert problems == [], problems
        finally: pg.close()
