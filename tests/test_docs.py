"""The offline docs site (tools/docs_site.py): its pieces on small notebooks, then sites built with its command line
and opened in headless Chromium, search included.

The browser comes from tests/browser.py (Debian's chromium driven by Playwright; never `playwright install`). Outside
CI a missing browser, Playwright, npm or Pagefind skips the tests that need it with a message; in CI (CI=true) it
fails them."""
import contextlib, functools, http.server, json, re, shutil, sys, threading
from pathlib import Path
from urllib.parse import urldefrag
import pytest
from conftest import ROOT, run
from browser import launch, missing

sys.path.insert(0, str(ROOT / 'tools'))
import docs_site as ds  # noqa: E402  (development tooling: not part of the package)

SITE_TOOL = ROOT / 'tools' / 'docs_site.py'
WAIT_MS = 60_000  # the longest any page may take to load and draw its figures and widgets
VIEW = 'application/vnd.jupyter.widget-view+json'
STATE = 'application/vnd.jupyter.widget-state+json'


def build_site(*args, cwd=ROOT, check=True, timeout=600):
    "Run the site builder as a developer does: `python tools/docs_site.py ARGS`."
    return run(sys.executable, SITE_TOOL, *args, cwd=cwd, check=check, timeout=timeout)


def _nb(*cells, **meta):
    def mk(t, s):
        extra = dict(outputs=[], execution_count=None) if t == 'code' else {}
        return dict(cell_type=t, source=s, metadata={}, **extra)
    kernel = dict(kernelspec=dict(name='python3', display_name='Python 3', language='python'))
    return dict(cells=[mk(*c) for c in cells], metadata={**kernel, **meta}, nbformat=4, nbformat_minor=5)


TINY = _nb(('markdown', '# Tiny\n> A two-cell notebook'), ('code', '#| export\ndef double(x): return 2 * x'),
           ('code', '#| eval: false\nraise SystemExit("never run")'), ('code', '#| slow\nprint("slow ran")'),
           ('code', 'double(21)'), execution=dict(total=1.5))


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    "TINY, prepared for execution (with slow cells, and without)."
    p = tmp_path_factory.mktemp('tiny') / 'tiny.ipynb'
    p.write_text(json.dumps(TINY))
    return dict(path=p, full=ds.prepare_notebook(p), quick=ds.prepare_notebook(p, skip_slow=True))


# ---------------------------------------------------------------------------------------------------------------------
# The pieces

def test_package_keeps_only_the_readme():
    import steerable_nb.docs as d
    assert {'readme_from_notebook', 'write_readme'} <= set(d.__all__)
    assert not {'build_docs', 'docs_main', 'render_page'} & set(d.__all__), d.__all__


def test_page_names():
    names = [ds.page_name(n) for n in ('index.ipynb', '00_augment.ipynb', 'tutorials/01_Explore.ipynb')]
    assert names == ['index.html', 'augment.html', 'tutorials/explore.html']


def test_prepare_notebook(tiny):
    pre = tiny['full']
    assert pre['metadata'] == dict(kernelspec=TINY['metadata']['kernelspec'], title='Tiny')
    assert ds.prepare_notebook(tiny['path']) == pre  # the same input prepares to the same notebook
    src = [c['source'] for c in pre['cells']]
    assert src[:2] == ['# Tiny\n\n> A two-cell notebook', '#| hide\nfrom nbdev.showdoc import show_doc']
    assert src[3:5] == ['#| echo: false\n#| output: asis\nshow_doc(double)', TINY['cells'][2]['source']]
    def tagged(nb):
        return [c['source'].splitlines()[0] for c in nb['cells'] if ds.SKIP_TAG in c['metadata'].get('tags', [])]
    assert tagged(pre) == ['#| eval: false']
    assert tagged(tiny['quick']) == ['#| eval: false', '#| slow']
    # a page whose slow cells do not run says so, under its title
    banner = [c['source'] for c in tiny['quick']['cells'] if 'sn-banner' in c['source']]
    assert len(banner) == 1 and '1 slow cell of this notebook was skipped' in banner[0], banner
    assert tiny['quick']['cells'][1]['source'] == banner[0] and 'sn-banner' not in json.dumps(pre)


def test_execute_notebook_caches_with_jupyter_cache(tiny, tmp_path):
    from jupyter_cache import get_cache
    ran, cached = ds.execute_notebook(tiny['full'], tmp_path, cache_dir=tmp_path, name='tiny.ipynb', key='a')
    assert not cached
    assert ds.execute_notebook(tiny['full'], tmp_path, cache_dir=tmp_path, name='tiny.ipynb', key='a') == (ran, True)
    outs = [c['outputs'] for c in ran['cells'] if c['cell_type'] == 'code']
    assert outs[3] == []  # eval: false
    assert outs[4][0]['text'] == 'slow ran\n'
    assert outs[5][0]['data']['text/plain'] == '42'
    assert outs[2][0]['data']['text/markdown'].lstrip().startswith('---')  # show_doc(double)
    assert 'widgets' not in ran['metadata']  # no widgets were shown, so no state is stored
    quick, cached = ds.execute_notebook(tiny['quick'], tmp_path, cache_dir=tmp_path, name='tiny.ipynb', key='a')
    assert not cached and [c['outputs'] for c in quick['cells'] if c['cell_type'] == 'code'][4] == []
    assert not ds.execute_notebook(tiny['quick'], tmp_path, cache_dir=tmp_path, name='tiny.ipynb', key='b')[1]
    records = get_cache(tmp_path / 'docs-jupyter-cache').list_cache_records()
    assert [(r.uri, r.data) for r in records] == [('tiny.ipynb', {'key': 'b'})]  # one entry per notebook
    bad = _nb(('code', 'x = 1'), ('code', '1 / 0'))
    with pytest.raises(RuntimeError, match='bad.ipynb: a cell failed'):
        ds.execute_notebook(bad, tmp_path, cache_dir=tmp_path, name='bad.ipynb')


def test_cached_widget_state(tmp_path):
    "jupyter-cache keeps the notebook's widget state along with the outputs."
    nb = _nb(('code', "import ipywidgets as w\nw.IntSlider(3)"))
    ran, _ = ds.execute_notebook(nb, tmp_path, cache_dir=tmp_path, name='w.ipynb')
    again, cached = ds.execute_notebook(nb, tmp_path, cache_dir=tmp_path, name='w.ipynb')
    state = ran['metadata']['widgets'][STATE]['state']
    assert cached and again['metadata']['widgets'][STATE]['state'] == state
    assert [v['model_name'] for v in state.values()].count('IntSliderModel') == 1


def test_finish_notebook(tiny):
    ran = json.loads(json.dumps(tiny['full']))
    done = ds.finish_notebook(ran)
    assert [c['source'] for c in done['cells']] == ['# Tiny\n\n> A two-cell notebook', 'show_doc(double)',
                                                    'raise SystemExit("never run")', 'print("slow ran")', 'double(21)']
    assert done['cells'][1]['metadata']['transient'] == dict(remove_source=True)
    assert all(ds.SKIP_TAG not in c['metadata'].get('tags', []) for c in done['cells'])
    nb = _nb(('markdown', 'See [`f`](https://x.io/p/augment.html#f).'), ('code', '#| include: false\nsecret = 1'),
             ('code', '%%time\n#| output: false\nx = 1 #| hide_line\ny = 2'))
    page = ds.finish_notebook(nb, '../', 'https://x.io/p/')
    assert [c['source'] for c in page['cells']] == ['See [`f`](../augment.html#f).', 'y = 2']


def test_finish_outputs():
    md = '[source](https://g.com/a.py#L1){target="_blank" style="float:right"}'
    cell = dict(cell_type='code', source='1', metadata={}, outputs=[
        dict(output_type='display_data', metadata={}, data={'text/plain': 'bar', VIEW: dict(model_id='gone')}),
        dict(output_type='display_data', metadata={},
             data={'text/html': '<script src="https://cdn.x/mathjax/3/tex-svg.js"></script><div>fig</div>'}),
        dict(output_type='stream', name='stdout', text='\x1b[31mred\x1b[0m\n'),
        dict(output_type='stream', name='stderr', text="W1202 cpp_extension.py:183] No CUDA runtime is found, using "
                                                       "CUDA_HOME='/usr/local'\n"),  # noise: gone, and its block
        dict(output_type='stream', name='stderr', text='No CUDA runtime is found\nreal warning\n'),  # the rest stays
        dict(output_type='stream', name='stderr', text="/tmp/x.py:2: UserWarning: The given NumPy array is not "
                                                       "writable, and PyTorch ...\n  photo = torch.from_numpy(a)\n"),
        dict(output_type='execute_result', metadata={}, execution_count=1, data={'text/markdown': md})])
    assert ds.finish_notebook(dict(cells=[cell], metadata={}))['cells'][0]['outputs'] == [
        dict(output_type='display_data', metadata={}, data={'text/plain': 'bar'}),
        dict(output_type='display_data', metadata={}, data={'text/html': '<div>fig</div>'}),
        dict(output_type='stream', name='stdout', text='red\n'),
        dict(output_type='stream', name='stderr', text='real warning\n'),
        dict(output_type='execute_result', metadata={}, execution_count=1,
             data={'text/markdown': '[source](https://g.com/a.py#L1)'})]


def test_prune_widget_state():
    box = dict(_view_name='VBoxView', children=['IPY_MODEL_a', 'IPY_MODEL_b'], layout='IPY_MODEL_l1')
    st = dict(box=dict(state=box),
              a=dict(state=dict(_view_name='FloatSliderView', layout='IPY_MODEL_l2')),
              b=dict(state=dict(_view_name='FloatTextView')),
              link=dict(state=dict(_view_name=None, source=['IPY_MODEL_a', 'value'], target=['IPY_MODEL_b', 'value'])),
              out=dict(state=dict(_view_name='OutputView', outputs=[dict(data={VIEW: dict(model_id='fig')})])),
              fig=dict(state=dict(_view_name='AnyView')), l1=dict(state={}), l2=dict(state={}),
              hidden=dict(state=dict(_view_name='AnyView', layout='IPY_MODEL_l3')), l3=dict(state={}))
    assert sorted(ds.prune_widget_state(st, {'box'})) == ['a', 'b', 'box', 'l1', 'l2', 'link']
    assert sorted(ds.prune_widget_state(st, {'out', 'gone'})) == ['fig', 'out']
    shown = dict(output_type='display_data', metadata={}, data={VIEW: dict(model_id='box')})
    nb = dict(cells=[dict(cell_type='code', source='box', metadata={}, outputs=[shown])],
              metadata=dict(widgets={STATE: dict(state=st, version_major=2, version_minor=0)}))
    assert len(ds.finish_notebook(nb)['metadata']['widgets'][STATE]['state']) == 6
    assert len(nb['metadata']['widgets'][STATE]['state']) == 10  # the input is unchanged


def test_sidebar(tmp_path):
    (tmp_path / 'tutorials').mkdir()
    (tmp_path / 'tutorials' / 'b.ipynb').touch()
    (tmp_path / 'tutorials' / 'a.ipynb').touch()
    (tmp_path / 'sidebar.yml').write_text('website:\n  sidebar:\n    contents:\n      - index.ipynb\n'
                                          '      - 00_augment.ipynb\n      - section: Tutorials\n        contents:\n'
                                          '          - auto: "tutorials/*.ipynb"\n')
    entries = ds.sidebar_entries(tmp_path)
    assert entries == [(None, 'index.ipynb'), (None, '00_augment.ipynb'), ('Tutorials', 'tutorials/a.ipynb'),
                       ('Tutorials', 'tutorials/b.ipynb')]
    nav = ds.sidebar_html(entries, {'index.html': 'Home', 'tutorials/a.html': 'A & B', 'extra.html': 'Extra'},
                          'tutorials/a.html')
    assert re.findall(r'href="([^"]+)"', nav) == ['../index.html', '../tutorials/a.html', '../extra.html']
    assert '<span>Tutorials</span>' in nav and 'aria-current="page">A &amp; B<' in nav and 'augment' not in nav
    assert ds.sidebar_entries(tmp_path / 'nonexistent') == []


def test_render_page(tiny):
    done = ds.finish_notebook(tiny['full'])
    done['metadata']['widgets'] = {STATE: dict(state={}, version_major=2, version_minor=0)}
    nav = ds.sidebar_html([], {'tutorials/tiny.html': 'Tiny'}, 'tutorials/tiny.html')
    out = ds.render_page(done, 'tutorials/tiny.html', nav, 'proj')
    assert re.findall(r'<script src="([^"]+)"', out) == ['../static/require.js', '../static/mathjax/tex-chtml-full.js']
    assert "widgetRendererSrc = '../static/html-manager/embed-amd.js'" in out  # added once the page has loaded
    assert '"anywidget": "../static/anywidget/index"' in out and '"@jupyter-widgets": "../static/html-manager"' in out
    assert '<title>Tiny</title>' in out and '<h1 id="Tiny"><span id="tiny"></span>Tiny' in out
    assert 'SystemExit' in out and 'show_doc(double)' not in out and 'In&nbsp;[' not in out
    assert '<main class="sn-main" data-pagefind-body="">' in out and 'PagefindUI' not in out
    printed = _nb(('code', 'print(1)'))
    printed['cells'][0]['outputs'] = [dict(output_type='stream', name='stdout', text='1\n'),
                                      dict(output_type='display_data', metadata={}, data={'text/markdown': '**doc**'})]
    page = ds.render_page(printed, 'printed.html')
    assert '" data-mime-type="text/plain" data-pagefind-ignore="all"' in page  # printed output: not searched
    assert '" data-mime-type="text/markdown" data-pagefind-ignore' not in page  # the API docs (show_doc): searched
    math = _nb(('markdown', 'Steer $M(\\theta) f(x)$ with `$x$` in code.\n\n$$a^2$$'))
    page = ds.render_page(math, 'math.html')  # search skips raw LaTeX; MathJax still typesets it
    assert '<span data-pagefind-ignore="">$M(\\theta) f(x)$</span>' in page and '<code>$x$</code>' in page, page
    assert '<span data-pagefind-ignore="">$$a^2$$</span>' in page
    searchable = ds.render_page(done, 'tutorials/tiny.html', nav, 'proj', search=True)
    assert '<script src="../pagefind/pagefind-ui.js"></script>' in searchable and 'new PagefindUI(' in searchable


def test_notebook_list():
    nbs = ROOT / 'nbs'
    available = ds.docs_notebooks(nbs)
    assert [p.name for p in available][:2] == ['00_augment.ipynb', '01_data.ipynb']
    assert all(not p.name.startswith('_') for p in available)
    assert ds.find_notebook('index', nbs, available) == (nbs / 'index.ipynb').resolve()
    with pytest.raises(FileNotFoundError, match="no notebook 'no_such_notebook'"):
        ds.build_docs(ROOT, ['no_such_notebook'])


def test_cli_errors():
    assert '--skip_slow' in build_site('--help').stdout
    p = build_site('no_such_notebook', check=False)
    assert p.returncode == 1 and "docs_site: error: no notebook 'no_such_notebook'" in p.stderr, p.stderr


def test_npm_is_required(tmp_path, monkeypatch):
    monkeypatch.setenv('PATH', '')
    with pytest.raises(FileNotFoundError, match='npm not found on PATH'):
        ds.js_packages(tmp_path)


# ---------------------------------------------------------------------------------------------------------------------
# Sites built and opened in a browser

@pytest.fixture(scope='module')
def browser():
    with launch(WAIT_MS) as b:
        yield b


@pytest.fixture(scope='module')
def npm():
    if shutil.which('npm') is None:
        missing("npm, to install the pinned JavaScript packages (apt-get install npm)")


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serve(folder):
    "Serve `folder` on 127.0.0.1 (a free port) from a thread; yields the base URL; stops the server on exit."
    srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), functools.partial(_Quiet, directory=str(folder)))
    t = threading.Thread(target=srv.serve_forever, kwargs=dict(poll_interval=0.1), daemon=True)
    t.start()
    try:
        yield f'http://127.0.0.1:{srv.server_port}/'
    finally:
        srv.shutdown()
        srv.server_close()
        t.join(timeout=10)


def site_pages(site: Path) -> list[str]:
    return sorted(p.relative_to(site).as_posix() for p in site.rglob('*.html')
                  if p.relative_to(site).parts[0] not in ('static', 'pagefind'))


def open_page(browser, base: str, page: str, n_figures: int = 0):
    """Open `page` and wait (bounded) until its widgets and (at least `n_figures`) plotly figures are drawn.
    Returns the Playwright page and what went wrong: console errors, page errors, failed or off-site requests."""
    pg, problems = browser.new_page(), []
    pg.set_default_timeout(WAIT_MS)
    pg.on('console', lambda m: problems.append(f'console {m.type}: {m.text}') if m.type == 'error' else None)
    pg.on('pageerror', lambda e: problems.append(f'page error: {e}'))
    pg.on('requestfailed', lambda r: problems.append(f'request failed: {r.url[:150]} ({r.failure})'))
    pg.on('request', lambda r: None if r.url.startswith((base, 'data:', 'blob:'))
          else problems.append(f'off-site request: {r.url[:150]}'))
    pg.goto(base + page, wait_until='load')
    # widget views are replaced by the rendered widget; plotly divs get their svg once drawn
    pg.wait_for_function("""() => document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]')
                                  .length <= document.querySelectorAll('.jupyter-widgets').length""")
    pg.wait_for_function("""n => { const figs = [...document.querySelectorAll('.js-plotly-plot')];
                                   return figs.length >= n && figs.every(d => d.querySelector('svg.main-svg')); }""",
                         arg=n_figures)
    pg.wait_for_timeout(500)  # late console errors
    return pg, problems


def widget_models(page_html: str, model_name: str) -> list:
    "The saved widget models called `model_name` in a page."
    m = re.search(r'<script type="application/vnd.jupyter.widget-state\+json">(.*?)</script>', page_html, re.S)
    state = json.loads(m.group(1))['state'] if m else {}
    return [k for k, v in state.items() if v['model_name'] == model_name]


FIT_JS = """() => { const main = document.querySelector('main.sn-main');
  const css = getComputedStyle(main);
  const col = main.clientWidth - parseFloat(css.paddingLeft) - parseFloat(css.paddingRight);
  const over = [...document.querySelectorAll('.js-plotly-plot, .jp-OutputArea-output')]
    .map(e => Math.round(e.getBoundingClientRect().width - col)).filter(d => d > 1);
  if (document.documentElement.scrollWidth > document.documentElement.clientWidth + 1)
    over.push('page ' + (document.documentElement.scrollWidth - document.documentElement.clientWidth));
  return over; }"""
# the steering figures a page shows in place of a live explorer (after the note saying why): title and axis titles
STEERING_LABELS_JS = """() => [...document.querySelectorAll('.steering-note')].map(n => {
  const g = n.parentElement.querySelector('.js-plotly-plot');
  return {title: g && (g.querySelector('.gtitle') || {}).textContent,
          axes: g ? [...g.querySelectorAll('.g-xtitle, .g-ytitle')].map(t => t.textContent) : []}; })"""


def screenshot(pg, name: str):
    "Save what the test saw under steerable_outputs/screenshots/ (git-ignored), for a person to look at."
    out = ROOT / 'steerable_outputs' / 'screenshots'
    out.mkdir(parents=True, exist_ok=True)
    pg.screenshot(path=out / f"docs-{name.replace('/', '-').replace('.html', '')}.png", full_page=True)


def check_page(pg, base: str, page: str, pages: list, unbuilt) -> dict:
    "Figures drawn, widgets rendered, math typeset, the sidebar links every page, same-site links resolve."
    raw_figs = pg.locator('.js-plotly-plot').count()
    assert pg.locator('.js-plotly-plot svg.main-svg').count() >= raw_figs
    assert 'Error displaying widget' not in pg.inner_text('body'), f"{page}: a widget failed to render"
    assert pg.locator('mjx-merror').count() == 0, f"{page}: MathJax could not typeset some math"
    on_site = {urldefrag(h).url for h in pg.eval_on_selector_all('nav.sn-sidebar a', 'els => els.map(e => e.href)')}
    every = {base + p for p in pages}
    assert every <= on_site, f"{page}: the sidebar misses {sorted(every - on_site)}"
    links = pg.eval_on_selector_all('a[href]', 'els => els.map(e => e.href)')
    for url in sorted({urldefrag(h).url for h in links if h.startswith(base)} - {base + p for p in unbuilt}):
        r = pg.request.get(url, timeout=WAIT_MS)
        assert r.ok, f"{page} links to {url}: HTTP {r.status}"
    views = pg.locator('script[type="application/vnd.jupyter.widget-view+json"]').count()
    # what a reader sees: nothing wider than the page's column, no stderr block, titled and labelled steering figures
    wide = pg.evaluate(FIT_JS)
    assert wide == [], f"{page}: wider than their column (px): {wide}"
    assert pg.locator('[data-mime-type="application/vnd.jupyter.stderr"]').count() == 0, f"{page}: a stderr block"
    labels = pg.evaluate(STEERING_LABELS_JS)
    for fig in labels:
        assert fig['title'] and all(fig['axes']) and len(fig['axes']) >= 2, f"{page}: a steering figure's labels: {fig}"
    return dict(figures=raw_figs, widgets=views, math=pg.locator('mjx-container').count(), steering=len(labels))


def check_site(browser, site: Path, unbuilt: set = frozenset()):
    """Open every page: no errors, every figure drawn, sidebar and links as `check_page` wants (links to `unbuilt`,
    pages of the full site that a partial build leaves out, excepted)."""
    pages, report = site_pages(site), {}
    with serve(site) as base:
        for page in pages:
            raw = (site / page).read_text(encoding='utf-8')
            n_static = raw.count('class="plotly-graph-div"')
            n_fw = len(widget_models(raw, 'AnyModel'))  # every anywidget in our pages is a plotly FigureWidget
            pg, problems = open_page(browser, base, page, n_static + n_fw)
            try:
                screenshot(pg, f"{site.parent.name}-{page}")
                report[page] = check_page(pg, base, page, pages, unbuilt)
                assert report[page]['figures'] == n_static + n_fw, f"{page}: {report[page]} but {n_static} + {n_fw}"
                assert problems == [], f"{page}:\n" + '\n'.join(problems)
            finally:
                pg.close()
    return report


SEARCH_DONE = """q => { const m = document.querySelector('.pagefind-ui__message');
                       return !!m && m.textContent.includes(q) && !m.textContent.startsWith('Searching')
                              && !document.querySelector('.pagefind-ui__loading')
                              && document.querySelectorAll('.pagefind-ui__result').length
                                 === document.querySelectorAll('.pagefind-ui__result-link').length; }"""


def search(pg, query: str) -> list[str]:
    "Type `query` into the page's search box; the addresses of the results it shows."
    box = pg.locator('.pagefind-ui__search-input')
    if box.count() == 0:
        missing("Pagefind: the site was built without search (no Pagefind binary for this platform in npm)")
    box.fill('')
    box.press_sequentially(query, delay=30)
    pg.wait_for_function(SEARCH_DONE, arg=query)
    return pg.eval_on_selector_all('.pagefind-ui__result-link', 'els => els.map(e => e.href)')


LIBRARY_KEY = {}


def library_key() -> str:
    return ds._library_key(ROOT / 'steerable_nb')


REPO_NBS = ['index', '00_augment'] + (['07_widgets'] if (ROOT / 'nbs' / '07_widgets.ipynb').exists() else [])


@pytest.fixture(scope='module')
def repo_site(tmp_path_factory, npm):
    "This repository's pages: the home page, a library notebook with figures, and the widgets notebook if there is one."
    out = tmp_path_factory.mktemp('docs') / '_docs'
    LIBRARY_KEY['built'] = library_key()
    p = build_site(*REPO_NBS, '--out', out, '--skip_slow', timeout=1500)
    assert 'wrote' in p.stdout, p.stdout
    return out


WIDGETS_NB = _nb(
    ('markdown', '# Widgets\n> Live without a kernel'),
    ('code', "import ipywidgets as w, plotly.graph_objects as go\n"
             "a, b = w.FloatSlider(value=0.5, min=0, max=1, step=0.1, description='a'), w.FloatText(description='b')\n"
             "w.jslink((a, 'value'), (b, 'value'))\nw.VBox([a, b, w.Button(description='reset', icon='undo')])"),
    ('code', "fig = go.FigureWidget(go.Scatter(x=[0, 1, 2], y=[1, 3, 2], name='widget'))\nfig"),
    ('code', "#| echo: false\ngo.Figure(go.Bar(x=['a', 'b'], y=[1, 2]))"),
    ('code', "hidden = go.FigureWidget()  # never shown: left out of the page's widget state"),
    ('code', "print(''.join(map(chr, [113, 117, 97, 103, 103, 97])))  # printed, not in code: not searchable"))


@pytest.fixture(scope='module')
def widget_site(tmp_path_factory, npm):
    "A scratch project whose tutorial holds live widgets: a slider jslinked to a text box, a FigureWidget, a figure."
    root = tmp_path_factory.mktemp('proj')
    shutil.copy2(ROOT / 'settings.ini', root / 'settings.ini')
    (root / 'nbs' / 'tutorials').mkdir(parents=True)
    (root / 'nbs' / 'sidebar.yml').write_text('website:\n  sidebar:\n    contents:\n      - index.ipynb\n'
                                              '      - section: Tutorials\n        contents:\n'
                                              '          - tutorials/01_widgets.ipynb\n')
    home = _nb(('markdown', '# Scratch\n> Home page with math: $M(\\theta) f(x)$'),
               ('markdown', 'Steering maps move embeddings.'))
    (root / 'nbs' / 'index.ipynb').write_text(json.dumps(home))
    (root / 'nbs' / 'tutorials' / '01_widgets.ipynb').write_text(json.dumps(WIDGETS_NB))
    build_site('--no_cache', cwd=root)
    return root / '_docs'


def test_failing_notebook_is_reported_and_the_rest_is_built(tmp_path, npm):
    shutil.copy2(ROOT / 'settings.ini', tmp_path / 'settings.ini')
    (tmp_path / 'nbs').mkdir()
    (tmp_path / 'nbs' / 'index.ipynb').write_text(json.dumps(_nb(('markdown', '# Home\n> fine'), ('code', '1 + 1'))))
    broken = _nb(('markdown', '# Broken\n> fails'), ('code', '1 / 0'))
    (tmp_path / 'nbs' / '01_broken.ipynb').write_text(json.dumps(broken))
    p = build_site('--no_cache', cwd=tmp_path, check=False)
    assert p.returncode == 1, p.stdout + p.stderr
    assert '1 notebook(s) failed (01_broken.ipynb)' in p.stderr and 'ZeroDivisionError' in p.stderr, p.stderr
    assert '\x1b[' not in p.stderr
    assert site_pages(tmp_path / '_docs') == ['index.html']


def test_repo_pages_open_cleanly(repo_site, browser):
    pages = site_pages(repo_site)
    assert {'index.html', 'augment.html'} <= set(pages), pages
    assert (repo_site / 'static' / 'html-manager' / 'embed-amd.js').exists()
    full = {ds.page_name(p.relative_to(ROOT / 'nbs')) for p in ds.docs_notebooks(ROOT / 'nbs')}
    report = check_site(browser, repo_site, unbuilt=full - set(pages))
    assert report['augment.html']['figures'] >= 1, report
    assert report['index.html']['math'] >= 1, report
    if 'widgets.html' in report:  # its explorers, shown as their kernel-free figures, labels and all
        assert report['widgets.html']['steering'] >= 1, report
    assert report['index.html']['steering'] == 1, report  # the home page opens with one steering figure


def test_repo_site_search(repo_site, browser):
    "Search the repository's pages from the home page: a word from the augmentations notebook's title finds it."
    with serve(repo_site) as base:
        pg, problems = open_page(browser, base, 'index.html')
        try:
            results = search(pg, 'augmentations')
            assert base + 'augment.html' in {urldefrag(u).url for u in results}, results
            assert problems == [], problems
        finally:
            pg.close()


def test_rebuild_reuses_executed_notebooks(repo_site):
    "Nothing changed since the fixture's build: every notebook comes from the cache."
    if library_key() != LIBRARY_KEY['built']:
        pytest.skip("the library's source changed since the site was built (someone ran nbdev_export meanwhile)")
    p = build_site(*REPO_NBS, '--out', repo_site, '--skip_slow')
    assert p.stdout.count(': cached') == len(REPO_NBS), p.stdout


def test_widget_pages_are_interactive_offline(widget_site, browser):
    assert site_pages(widget_site) == ['index.html', 'tutorials/widgets.html']
    report = check_site(browser, widget_site)
    assert report['tutorials/widgets.html'] == dict(figures=2, widgets=2, math=0, steering=0), report
    page = (widget_site / 'tutorials' / 'widgets.html').read_text()
    assert len(widget_models(page, 'AnyModel')) == 1 and len(widget_models(page, 'LinkModel')) == 1
    with serve(widget_site) as base:
        pg, problems = open_page(browser, base, 'tutorials/widgets.html', 2)
        try:
            assert pg.locator('.widget-text input').input_value() == '0.5'
            pg.locator('.widget-slider .noUi-handle').focus()
            pg.keyboard.press('ArrowRight')  # the jslink runs in the browser: no kernel needed
            pg.wait_for_function("() => document.querySelector('.widget-text input').value === '0.6'", timeout=10_000)
            traces = pg.evaluate("() => [...document.querySelectorAll('.js-plotly-plot')]"
                                 ".map(d => d._fullData.map(t => t.type))")
            assert sorted(traces) == [['bar'], ['scatter']], traces
            pg.locator('nav.sn-sidebar a', has_text='Scratch').click()  # sidebar navigation from a subfolder
            pg.wait_for_url(base + 'index.html')
            assert pg.title() == 'Scratch'
            assert problems == [], problems
        finally:
            pg.close()


def test_search_finds_pages(widget_site, browser):
    """Type queries into the search box of a site served from a subfolder: results link to the right pages from any
    page, a click opens the page, and a word no page holds finds nothing."""
    with serve(widget_site.parent) as server:
        base = server + '_docs/'
        pg, problems = open_page(browser, base, 'tutorials/widgets.html', 2)
        try:
            assert [urldefrag(u).url for u in search(pg, 'embeddings')] == [base + 'index.html']
            pg.locator('.pagefind-ui__result-link').first.click()
            pg.wait_for_url(re.compile(re.escape(base + 'index.html')))
            assert pg.title() == 'Scratch'
            assert [urldefrag(u).url for u in search(pg, 'kernel')] == [base + 'tutorials/widgets.html']
            assert search(pg, 'zebrafish') == []
            assert search(pg, 'quagga') == []  # printed output is not indexed; nor is raw LaTeX (the home page's θ):
            assert base + 'index.html' not in {urldefrag(u).url for u in search(pg, 'theta')}
            assert [urldefrag(u).url for u in search(pg, 'hidden')] == [base + 'tutorials/widgets.html']  # code is
            assert problems == [], problems
        finally:
            pg.close()
