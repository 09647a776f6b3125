"""Build the offline docs site: every notebook executed, rendered with its figures and widgets, and searchable.

Development tooling, not part of the installed package. Run it from the repository (it needs the dev extras:
`pip install -e '.[dev]'`, which `.ci/env.sh` does, and npm):

    python tools/docs_site.py                          # the whole site into _docs/ (settings.ini's doc_path)
    python tools/docs_site.py index 00_augment         # rebuild two pages inside the existing site
    python tools/docs_site.py --skip_slow --no_cache --out /tmp/site
    python -m http.server -d _docs                     # then open http://127.0.0.1:8000/

Pages open from file:// too; search needs http:// (browsers refuse its fetches from file://).

GitHub's deploy workflow (.github/workflows/deploy.yaml) builds the usual nbdev site with Quarto. Quarto cannot be
installed on our machines, so this builds a plain static site: one page per notebook (`nbs/*.ipynb`,
`nbs/tutorials/*.ipynb`), a sidebar from `nbs/sidebar.yml`, `index.ipynb` (the README) as the home page, every plotly
figure and widget embedded so the pages are interactive without a kernel and need no network. The steps:

1. **Process** each notebook with nbdev's docs processors that keep cells (front matter, `show_doc` cells added
   after exported definitions, links). `_proc/` cannot be used: it has lost the cells the notebook needs to run.
2. **Execute** it in a fresh kernel with nbclient, storing widget state, with plotly's `notebook` renderer.
   `#| eval: false` cells (and, if asked, `#| slow` cells) carry nbclient's `skip-execution` tag. jupyter-cache
   keeps the executed notebooks (`$STEERABLE_NB_CACHE/docs-jupyter-cache`, else under ~/.cache/steerable_nb),
   matched on their code cells; each entry also records a hash of the library, so changed library code re-runs.
3. **Finish**: drop hidden and exported cells, apply the Quarto cell options nbconvert ignores (`echo`, `output`,
   `include`), make links to the online docs relative, keep only the widget state of the widgets the page shows.
4. **Render** with nbconvert's `lab` template, extended by `site_assets/page.html.j2`: the sidebar, search, and
   require.js, the widget manager, anywidget and MathJax from the site's own `static/`.
5. **Assets and search**: the JavaScript is pinned in `site_assets/package.json` and `package-lock.json` (versions
   and integrity hashes) and installed once with `npm ci` into the cache; Pagefind, one of those packages, then
   indexes the written pages into `pagefind/`.

`tests/test_docs.py` builds sites with this and opens every page in headless Chromium, search included.
"""
from __future__ import annotations
import configparser, hashlib, html, json, os, re, shutil, subprocess, time
from contextlib import contextmanager
from pathlib import Path
from fastcore.script import call_parse, Param, store_true

HERE = Path(__file__).resolve().parent
ASSETS = HERE / 'site_assets'  # the page template and the pinned npm packages
SKIP_TAG = 'skip-execution'  # nbclient does not run cells with this tag
IMAGE_SUFFIXES = ('.png', '.jpg', '.jpeg', '.gif', '.svg', '.webp')
_DIRECTIVE = re.compile(r'^\s*#\s*\|')
_QUARTO = re.compile(r'^\s*#\s*\|\s*([\w-]+)\s*:\s*(.*?)\s*$')
_ANSI = re.compile(r'\x1B(?:[@-Z\\-_]|\[[0-?]*[ -/]*[@-~])')
_HIDDEN = {'hide', 'export', 'exporti', 'default_exp'}
_CDN_MATHJAX = re.compile(r'<script[^>]*src="https?://[^"]*mathjax[^"]*"[^>]*>\s*</script>', re.I)
_PANDOC_ATTRS = re.compile(r'(\]\([^)\s]*\))\{[^}\n]*\}')
_WIDGET_VIEW = 'application/vnd.jupyter.widget-view+json'
_WIDGET_STATE = 'application/vnd.jupyter.widget-state+json'
# stderr that says nothing about the page: a CUDA build of torch on a machine without a CUDA runtime prints the first
# when `torch.utils.cpp_extension` is imported (e.g. by `torch.utils.benchmark`); the second is torch's warning about a
# read-only NumPy array (00_augment's `torch.from_numpy(load_sample_image(...))`; a `.copy()` there would silence it),
# with the source line Python prints under it
STDERR_NOISE = (re.compile(r'^.*No CUDA runtime is found.*$\n?', re.M),
                re.compile(r'^.*UserWarning: The given NumPy array is not writable.*$\n?(^  .*$\n?)?', re.M))


def _cache_home(cache_dir=None) -> Path:
    "`cache_dir`, else the project's cache folder: `$STEERABLE_NB_CACHE`, else ~/.cache/steerable_nb."
    if cache_dir is not None:
        return Path(cache_dir)
    return Path(os.environ.get('STEERABLE_NB_CACHE') or Path.home() / '.cache' / 'steerable_nb').expanduser()


def project_root(start: str | Path = '.'  # a folder inside the repository
                ) -> Path:
    "The folder holding settings.ini, searching upwards from `start`."
    p = Path(start).resolve()
    for q in (p, *p.parents):
        if (q / 'settings.ini').exists():
            return q
    raise FileNotFoundError(f"no settings.ini in {p} or any folder above it: run this inside an nbdev repository")


def _text(source) -> str:
    return ''.join(source) if isinstance(source, list) else source


# ---------------------------------------------------------------------------------------------------------------------
# JavaScript from npm

def js_packages(cache_dir: str | Path | None = None,  # default: $STEERABLE_NB_CACHE or ~/.cache/steerable_nb
                timeout: float = 600,  # seconds for `npm ci`
               ) -> Path:  # the `node_modules` folder
    "The pinned npm packages of `site_assets/package-lock.json`, installed once with `npm ci` into the cache."
    lock = (ASSETS / 'package.json').read_bytes() + (ASSETS / 'package-lock.json').read_bytes()
    dest = _cache_home(cache_dir) / 'npm' / f"docs-site-{hashlib.sha256(lock).hexdigest()[:12]}"
    if (dest / 'node_modules' / '.package-lock.json').exists():
        return dest / 'node_modules'
    npm = shutil.which('npm')
    if npm is None:
        raise FileNotFoundError("npm not found on PATH: the docs build installs its pinned JavaScript packages with "
                                "`npm ci`; install Node.js with npm (e.g. `apt-get install npm`)")
    tmp = dest.with_name(dest.name + '.tmp')
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name in ('package.json', 'package-lock.json', '.npmrc'):
        shutil.copy2(ASSETS / name, tmp / name)
    p = subprocess.run([npm, 'ci', '--ignore-scripts', '--no-audit', '--no-fund'], cwd=tmp, capture_output=True,
                       text=True, timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError(f"`npm ci` in {tmp} failed (exit {p.returncode}): {p.stderr.strip()[-2000:]}")
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    return dest / 'node_modules'


def copy_static_assets(site: str | Path,  # the site's folder
                       node_modules: Path,  # from `js_packages`
                      ) -> Path:  # `site`/static
    "Copy require.js, the widget HTML manager, anywidget and MathJax into `site`/static."
    static = Path(site) / 'static'
    for sub in ('html-manager', 'anywidget', 'mathjax'):
        shutil.rmtree(static / sub, ignore_errors=True)
    (static / 'anywidget').mkdir(parents=True)
    shutil.copy2(node_modules / 'requirejs' / 'require.js', static / 'require.js')
    shutil.copy2(node_modules / 'anywidget' / 'dist' / 'index.js', static / 'anywidget' / 'index.js')
    unused = ('embed.js', 'libembed-amd.js', 'embed.js.LICENSE.txt')  # embed-amd.js and the fonts it loads suffice
    shutil.copytree(node_modules / '@jupyter-widgets' / 'html-manager' / 'dist', static / 'html-manager',
                    ignore=lambda d, names: [n for n in names if n.endswith('.map') or n in unused])
    mathjax = node_modules / 'mathjax' / 'es5'
    (static / 'mathjax').mkdir()
    shutil.copy2(mathjax / 'tex-chtml-full.js', static / 'mathjax' / 'tex-chtml-full.js')
    fonts = Path('output') / 'chtml' / 'fonts' / 'woff-v2'
    shutil.copytree(mathjax / fonts, static / 'mathjax' / fonts)
    return static


def pagefind_command(node_modules: Path  # from `js_packages`
                    ) -> Path | None:  # None where Pagefind has no binary for this platform
    "The `pagefind` command of the pinned npm packages, if it runs here."
    exe = node_modules / '.bin' / 'pagefind'
    if not exe.exists():
        return None
    p = subprocess.run([str(exe), '--version'], capture_output=True, text=True, timeout=120)
    return exe if p.returncode == 0 else None


def index_site(site: str | Path,  # the built site's folder
               pagefind: Path,  # from `pagefind_command`
               timeout: float = 600,  # seconds for the indexing
              ) -> Path:  # `site`/pagefind, the search index and its UI
    "Index the site's pages with Pagefind (the text inside each page's `data-pagefind-body` element)."
    out = Path(site) / 'pagefind'
    shutil.rmtree(out, ignore_errors=True)
    cmd = [str(pagefind), '--site', str(site), '--keep-index-url',  # links as the sidebar's, index.html included
           '--exclude-selectors', '.anchor-link']  # the headings' '¶' links; outputs and math: see `_unsearchable`
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0 or not (out / 'pagefind-ui.js').exists():
        raise RuntimeError(f"pagefind --site {site} failed (exit {p.returncode}): {(p.stdout + p.stderr)[-2000:]}")
    return out


# ---------------------------------------------------------------------------------------------------------------------
# From notebook to executed notebook

def page_name(nb_rel: str | Path  # notebook path relative to nbs/
             ) -> str:  # the page, relative to the site
    "nbdev's page name: `00_augment.ipynb` → `augment.html`, `tutorials/x.ipynb` → `tutorials/x.html`."
    p = Path(nb_rel)
    return p.with_name(re.sub(r'^\d+[a-zA-Z0-9]*_', '', p.name.lower())).with_suffix('.html').as_posix()


def leading_directives(src: str  # a code cell's source
                      ) -> tuple[dict, list, list]:  # Quarto options, nbdev flags, the remaining lines
    "Split the `#|` directives (and cell magics) at the top of a code cell from its code."
    lines, opts, flags, i = src.splitlines(), {}, [], 0
    while i < len(lines) and (_DIRECTIVE.match(lines[i]) or not lines[i].strip()
                              or lines[i].lstrip().startswith('%%')):
        if _DIRECTIVE.match(lines[i]):
            m = _QUARTO.match(lines[i])
            if m:
                opts[m.group(1)] = m.group(2).strip('"\'')
            else:
                flags += lines[i].split('|', 1)[1].split()[:1]
        i += 1
    return opts, flags, lines[i:]


@contextmanager
def _cwd(path):
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def _nbdev_processed(nb_path: Path):
    "The notebook (outputs and stale metadata dropped) after nbdev's docs processors that keep cells."
    from execnb.nbio import dict2nb
    from nbdev.process import NBProcessor
    from nbdev import processors as P
    from nbdev.frontmatter import FrontmatterProc
    raw = json.loads(nb_path.read_text(encoding='utf-8'))
    raw['metadata'] = {k: v for k, v in raw.get('metadata', {}).items() if k in ('kernelspec', 'language_info')}
    for c in raw['cells']:
        if c['cell_type'] == 'code':
            c['outputs'], c['execution_count'] = [], None
    nb = dict2nb(raw)
    nb.path_ = str(nb_path)
    procs = [FrontmatterProc, P.populate_language, P.add_show_docs, P.rm_header_dash, P.clean_show_doc,
             P.add_links, P.mv_exports, P.strip_hidden_metadata]
    NBProcessor(nb=nb, procs=procs, rm_directives=False).process()
    return nb


def _plain_cell(i: int, c: dict, skip_slow: bool) -> dict:
    "A cell with only nbformat's keys (nbdev's markers dropped), a stable id, and the skip tag if it must not run."
    keep = {'cell_type', 'id', 'metadata', 'source', 'outputs', 'execution_count', 'attachments'}
    c = {k: v for k, v in c.items() if k in keep}
    c['source'] = _text(c['source'])
    c['id'] = hashlib.sha1(f"{i}-{c['cell_type']}-{c['source']}".encode()).hexdigest()[:8]
    if c['cell_type'] == 'code':
        c.setdefault('outputs', [])
        c.setdefault('execution_count', None)
        opts, flags, _ = leading_directives(c['source'])
        if opts.get('eval', '').lower() == 'false' or (skip_slow and 'slow' in flags):
            c.setdefault('metadata', {}).setdefault('tags', []).append(SKIP_TAG)
    return c


SLOW_BANNER = ('<div class="sn-banner" role="note"><b>Built quickly:</b> {n} slow cell{s} of this notebook {were} '
               'skipped (<code>--skip_slow</code>), so the results below come from the quick stand-ins the '
               'notebook sets up for its tests (short training runs), not from the full runs. Build the docs '
               'without <code>--skip_slow</code> for the real figures.</div>')


def prepare_notebook(nb_path: str | Path,  # a notebook inside the project's nbs/
                     skip_slow: bool = False,  # tag `#| slow` cells not to run
                    ) -> dict:  # notebook JSON, ready to execute; metadata.title holds its title
    "Apply nbdev's docs processors that keep cells to a notebook, and tag the cells that must not run."
    from execnb.nbio import nb2dict, mk_cell
    nb = _nbdev_processed(Path(nb_path))
    fm = getattr(nb, 'frontmatter_', None) or {}
    cells = [c for c in nb.cells if not (c.cell_type == 'raw' and c.source.startswith('---'))]
    head = []
    if fm.get('title'):
        summary = f"\n\n> {fm['description']}" if fm.get('description') else ''
        head = [mk_cell(f"# {fm['title']}{summary}", 'markdown')]
    nb.cells = head + [mk_cell('#| hide\nfrom nbdev.showdoc import show_doc', 'code')] + cells
    d = nb2dict(nb)
    d['metadata']['title'] = fm.get('title') or Path(nb_path).stem
    d['cells'] = [_plain_cell(i, c, skip_slow) for i, c in enumerate(d['cells'])]
    skipped = sum(skip_slow and 'slow' in leading_directives(c['source'])[1]
                  for c in d['cells'] if c['cell_type'] == 'code')
    if skipped:  # say so at the top of the page, under its title
        text = SLOW_BANNER.format(n=skipped, s='s' if skipped > 1 else '', were='were' if skipped > 1 else 'was')
        banner = _plain_cell(-1, dict(cell_type='markdown', metadata={}, source=text), False)
        d['cells'].insert(1 if head else 0, banner)
    return d


def _run(node, cwd, timeout: int, name: str):
    "Execute a notebook node in place in a fresh kernel running in `cwd`, widget state stored."
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError
    client = NotebookClient(node, timeout=timeout, kernel_name='python3', store_widget_state=True,
                            record_timing=False, resources={'metadata': {'path': str(cwd)}})
    env = {**os.environ, 'PLOTLY_RENDERER': 'notebook',  # figures as HTML, plotly.js inlined once per page
           'STEERABLE_NB_PAGE': 'static'}  # no kernel behind the page: an explorer shows its kernel-free figure
    try:
        client.execute(env=env)
    except (CellExecutionError, CellTimeoutError) as e:
        raise RuntimeError(f"{name}: a cell failed while building the docs:\n{_ANSI.sub('', str(e))}") from None
    node.metadata.pop('execution', None)


def execute_notebook(nb: dict,  # notebook JSON, e.g. from `prepare_notebook`
                     cwd: str | Path,  # folder the kernel runs in (the notebook's)
                     cache_dir: str | Path | None = None,  # default: $STEERABLE_NB_CACHE or ~/.cache/steerable_nb
                     key: str = '',  # must match too for a cached result, e.g. a hash of the library
                     timeout: int = 1800,  # seconds per cell
                     name: str = 'notebook',  # its path: names its cache entry (one per name) and its errors
                     use_cache: bool = True,  # reuse (and store) the result for identical code and `key`
                    ) -> tuple[dict, bool]:  # executed notebook JSON, and whether it came from the cache
    "Run `nb` in a fresh kernel with widget state stored, or merge in jupyter-cache's outputs for the same code."
    import nbformat
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn
    node = nbformat.from_dict(json.loads(json.dumps(nb)))
    for i, c in enumerate(node.cells):
        c.setdefault('id', f'cell-{i}')  # nbformat 4.5 wants ids; jupyter-cache copies them onto cached cells
    cache = get_cache(_cache_home(cache_dir) / 'docs-jupyter-cache')
    if use_cache:
        try:
            record = cache.match_cache_notebook(node)
        except KeyError:
            record = None
        if record is not None and (record.data or {}).get('key') == key:
            return json.loads(json.dumps(cache.merge_match_into_notebook(node)[1])), True
    _run(node, cwd, timeout, name)
    if use_cache:
        record = cache.cache_notebook_bundle(CacheBundleIn(node, name, data={'key': key}), check_validity=False,
                                             overwrite=True)
        for old in cache.list_cache_records():
            if old.uri == name and old.pk != record.pk:
                cache.remove_cache(old.pk)
    return json.loads(json.dumps(node)), False


# ---------------------------------------------------------------------------------------------------------------------
# From executed notebook to page

def _widget_refs(x, out: set) -> set:
    "Model ids that a widget's state refers to: 'IPY_MODEL_<id>' strings and output views' model_id."
    if isinstance(x, str) and x.startswith('IPY_MODEL_'):
        out.add(x[len('IPY_MODEL_'):])
    elif isinstance(x, dict):
        if isinstance(x.get('model_id'), str):
            out.add(x['model_id'])
        for v in x.values():
            _widget_refs(v, out)
    elif isinstance(x, list):
        for v in x:
            _widget_refs(v, out)
    return out


def prune_widget_state(state: dict,  # model_id -> {model_name, state, ...}, as nbclient stores it
                       shown: set,  # model ids of the widget views the page shows
                      ) -> dict:  # the models the page needs
    "The widget models reachable from the shown views, plus view-less models (e.g. jslink) tied to them."
    refs = {k: _widget_refs(v.get('state', {}), set()) for k, v in state.items()}
    keep, todo = set(), [m for m in shown if m in state]
    viewless = [k for k, v in state.items() if not v.get('state', {}).get('_view_name')]
    while todo:
        m = todo.pop()
        if m not in keep and m in state:
            keep.add(m)
            todo.extend(refs[m])
        if not todo:
            todo = [k for k in viewless if k not in keep and refs[k] & keep]
    return {k: v for k, v in state.items() if k in keep}


def _finish_output(o: dict, fix, models: set) -> dict:
    "An output as the page shows it: no ANSI colours, no CDN MathJax, local links, no view of a lost widget."
    if o.get('output_type') == 'stream':
        o['text'] = _ANSI.sub('', _text(o['text']))
        if o.get('name') == 'stderr':
            for noise in STDERR_NOISE:
                o['text'] = noise.sub('', o['text'])
    data = o.get('data', {})
    for mime in ('text/markdown', 'text/html'):
        if isinstance(data.get(mime), list):
            data[mime] = ''.join(data[mime])
    if 'text/markdown' in data:
        data['text/markdown'] = fix(data['text/markdown'])
    if 'text/html' in data:
        data['text/html'] = _CDN_MATHJAX.sub('', data['text/html'])
    if _WIDGET_VIEW in data and data[_WIDGET_VIEW].get('model_id') not in models:
        del data[_WIDGET_VIEW]  # e.g. a closed progress bar: its text stays
    return o


def _finish_code_cell(c: dict, fix, models: set) -> dict | None:
    "A code cell as the page shows it (Quarto's cell options applied), or None if the page leaves it out."
    opts, flags, code = leading_directives(_text(c['source']))
    if set(flags) & _HIDDEN or opts.get('include', '').lower() == 'false':
        return None
    code = [l for l in code if not re.search(r'#\|\s*hide_line\s*$', l) and not re.match(r'\s*%', l)]
    c['source'] = '\n'.join(code).strip('\n')
    if opts.get('echo', '').lower() == 'false' or not c['source']:
        c.setdefault('metadata', {}).setdefault('transient', {})['remove_source'] = True
    if opts.get('output', '').lower() == 'false':
        c['outputs'] = []
    outs = [_finish_output(o, fix, models) for o in c.get('outputs', [])]
    c['outputs'] = [o for o in outs if (o.get('output_type') not in ('display_data', 'execute_result') or o['data'])
                    and (o.get('output_type') != 'stream' or o['text'].strip())]
    if c.get('metadata', {}).get('tags'):
        c['metadata']['tags'] = [t for t in c['metadata']['tags'] if t != SKIP_TAG]
    return c if c['source'] or c['outputs'] else None


def finish_notebook(nb: dict,  # an executed notebook's JSON
                    prefix: str = '',  # path from the page to the site's root, e.g. '../'
                    doc_url: str = '',  # the online docs' address, e.g. 'https://x.github.io/proj/'
                   ) -> dict:  # the notebook as its page shows it
    "Drop hidden and exported cells, apply Quarto's cell options, and make links to the online docs local."
    def fix(md: str) -> str:
        md = _PANDOC_ATTRS.sub(r'\1', md)  # `show_doc` writes Pandoc attributes for Quarto
        return md.replace(doc_url, prefix) if doc_url else md
    meta = json.loads(json.dumps(nb.get('metadata', {})))
    ws = meta.get('widgets', {}).get(_WIDGET_STATE)
    models = set(ws.get('state', {})) if ws else set()
    cells = []
    for c in json.loads(json.dumps(nb['cells'])):
        if c['cell_type'] == 'markdown':
            c['source'] = fix(_text(c['source']))
        if c['cell_type'] == 'code':
            c = _finish_code_cell(c, fix, models)
        if c is not None:
            cells.append(c)
    if ws is not None:
        shown = {o['data'][_WIDGET_VIEW]['model_id'] for c in cells for o in c.get('outputs', [])
                 if _WIDGET_VIEW in o.get('data', {})}
        ws['state'] = prune_widget_state(ws.get('state', {}), shown)
    return {**nb, 'metadata': meta, 'cells': cells}


def sidebar_entries(nbs: str | Path  # the notebooks folder, holding sidebar.yml
                   ) -> list[tuple[str | None, str]]:  # (section or None, notebook path relative to nbs/)
    "The notebooks `sidebar.yml` lists, in order, each with the section it is in."
    import yaml
    f, out = Path(nbs) / 'sidebar.yml', []
    if not f.exists():
        return out
    y = yaml.safe_load(f.read_text(encoding='utf-8')) or {}

    def walk(items, section):
        for it in (items if isinstance(items, list) else [items]) if items else []:
            if isinstance(it, str):
                out.append((section, it))
            elif isinstance(it, dict) and 'contents' in it:
                walk(it['contents'], it.get('section') or it.get('text') or section)
            elif isinstance(it, dict) and 'href' in it:
                out.append((section, it['href']))
            elif isinstance(it, dict) and 'auto' in it:
                out.extend((section, p.relative_to(nbs).as_posix()) for p in sorted(Path(nbs).glob(it['auto'])))
    walk(((y.get('website') or {}).get('sidebar') or {}).get('contents'), None)
    return out


def sidebar_html(entries: list,  # from `sidebar_entries`
                 titles: dict[str, str],  # page -> title, for every page in the site
                 current: str,  # the page this sidebar goes on
                ) -> str:  # a nested <ul> of relative links
    "The sidebar of page `current`: links to the site's pages, grouped by section, the current one marked."
    up = '../' * current.count('/')
    listed = [(s, page_name(n)) for s, n in entries if n.endswith('.ipynb')]
    items = [(s, p) for s, p in listed if p in titles]
    items += [(None, p) for p in titles if p not in {q for _, q in listed}]
    parts, section, seen = ['<ul class="sn-nav">'], None, set()
    for sec, page in items:
        if page in seen:
            continue
        seen.add(page)
        if sec != section:
            if section is not None:
                parts.append('</ul></li>')
            if sec is not None:
                parts.append(f'<li class="sn-section"><span>{html.escape(str(sec))}</span><ul>')
            section = sec
        cls = ' class="sn-active" aria-current="page"' if page == current else ''
        parts.append(f'<li><a href="{html.escape(up + page)}"{cls}>{html.escape(titles[page])}</a></li>')
    if section is not None:
        parts.append('</ul></li>')
    return ''.join(parts) + '</ul>'


_MARKDOWN_DIV = re.compile(r'(<div class="[^"]*jp-RenderedMarkdown[^"]*"[^>]*>)(.*?)(</div>)', re.S)
_CODE = re.compile(r'(<(code|pre)\b.*?</\2>)', re.S)
_MATH = re.compile(r'\$\$.+?\$\$|(?<![\\$])\$(?=\S)[^$\n]+?(?<=\S)\$', re.S)
# outputs that are not prose: printed text, HTML (tables, figures), errors; markdown outputs (`show_doc`) stay
_OUTPUT = re.compile(r'(<div class="[^"]*jp-OutputArea-output[^"]*" data-mime-type="'
                     r'(?:text/plain|text/html|application/vnd\.jupyter\.std(?:out|err))")')


def _unsearchable(page: str) -> str:
    "Mark what search skips (`data-pagefind-ignore`): outputs that are not prose, and raw LaTeX outside code."
    return _unsearchable_math(_OUTPUT.sub(r'\1 data-pagefind-ignore="all"', page))


def _unsearchable_math(page: str) -> str:
    "Wrap raw LaTeX in markdown (not in code) in `data-pagefind-ignore` spans: MathJax typesets it, search skips it."
    def in_markdown(m):
        parts = _CODE.split(m.group(2))  # every third part from 1 is a code block (the next one its tag name)
        text = ''.join(x if i % 3 else _MATH.sub(lambda k: f'<span data-pagefind-ignore="">{k.group(0)}</span>', x)
                       for i, x in enumerate(parts) if i % 3 != 2)
        return m.group(1) + text + m.group(3)
    return _MARKDOWN_DIV.sub(in_markdown, page)


def _lower_anchors(page: str) -> str:
    "Add the lower-case anchors nbdev's links use beside nbconvert's heading ids."
    ids = set(re.findall(r' id="([^"]+)"', page))

    def add(m):
        low = m.group(2).lower()
        if low == m.group(2) or low in ids:
            return m.group(0)
        ids.add(low)
        return f'{m.group(0)}<span id="{low}"></span>'
    return re.sub(r'(<h[1-6] id="([^"]+)">)', add, page)


def render_page(nb: dict,  # a finished notebook's JSON
                page: str,  # its page name, e.g. 'tutorials/explore.html'
                sidebar: str = '',  # the sidebar's HTML, from `sidebar_html`
                site_title: str = 'docs',  # shown above the sidebar
                home: str = 'index.html',  # the home page, relative to the site
                search: bool = False,  # add the Pagefind search box (the site must then be indexed)
               ) -> str:  # the page's HTML
    "One page of the site: nbconvert's lab template extended by `site_assets/page.html.j2`."
    import nbformat
    from nbconvert import HTMLExporter
    prefix = '../' * page.count('/')
    ex = HTMLExporter(template_name='lab', extra_template_paths=[str(ASSETS)], template_file='page.html.j2',
                      exclude_input_prompt=True, exclude_output_prompt=True)
    ex.require_js_url = prefix + 'static/require.js'
    ex.widget_renderer_url = prefix + 'static/html-manager/embed-amd.js'
    ex.mathjax_url = prefix + 'static/mathjax/tex-chtml-full.js'
    resources = dict(metadata=dict(name=nb.get('metadata', {}).get('title', page)), sn_prefix=prefix,
                     sn_sidebar=sidebar, sn_site_title=site_title, sn_home=prefix + home, sn_search=search)
    body, _ = ex.from_notebook_node(nbformat.from_dict(json.loads(json.dumps(nb))), resources=resources)
    return _unsearchable(_lower_anchors(body))


# ---------------------------------------------------------------------------------------------------------------------
# The site

def _settings(root: Path) -> dict:
    cp = configparser.ConfigParser(delimiters=['='], interpolation=None)
    cp.read(root / 'settings.ini', encoding='utf-8')
    return dict(cp['DEFAULT'])


def _hidden(rel: Path) -> bool:
    return any(s[0] in '_.' for s in rel.parts)


def docs_notebooks(nbs: str | Path  # the notebooks folder
                  ) -> list[Path]:  # every notebook that gets a page
    "The notebooks in `nbs` and its subfolders (e.g. tutorials/), skipping names that start with '_' or '.'."
    nbs = Path(nbs)
    return sorted((p for p in nbs.rglob('*.ipynb') if not _hidden(p.relative_to(nbs))),
                  key=lambda p: (len(p.relative_to(nbs).parts), p.as_posix()))


def find_notebook(name: str,  # a path, a path relative to nbs/, or a stem: 'index', '00_augment.ipynb'
                  nbs: Path,  # the notebooks folder
                  available: list[Path],  # from `docs_notebooks`
                 ) -> Path:
    "The notebook `name` names, among those that get a page."
    for p in (Path(name), nbs / name, nbs / f'{name}.ipynb'):
        if p.suffix == '.ipynb' and p.is_file() and p.resolve() in {a.resolve() for a in available}:
            return p.resolve()
    names = ', '.join(a.relative_to(nbs).as_posix() for a in available)
    raise FileNotFoundError(f"no notebook {name!r} in {nbs}; the notebooks are: {names}")


def _write(path: Path, text: str):
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + '.tmp')
    tmp.write_text(text, encoding='utf-8')
    tmp.replace(path)


def _library_key(lib: Path) -> str:
    "A hash of the library's source: executed notebooks are reused only while it is unchanged."
    return hashlib.sha256(b''.join(p.name.encode() + p.read_bytes() for p in sorted(lib.glob('*.py')))).hexdigest()


def _execute_all(chosen: list[Path], nbs: Path, doc_url: str, say, skip_slow: bool, **kw) -> tuple[dict, dict]:
    "Execute (or take from the cache) and finish each notebook: ({page: notebook}, {notebook: error})."
    pages, failed = {}, {}
    for nb_path in chosen:
        t, rel = time.time(), nb_path.relative_to(nbs).as_posix()
        page = page_name(rel)
        try:
            nb = prepare_notebook(nb_path, skip_slow)
            ran, cached = execute_notebook(nb, nb_path.parent, name=str(nb_path), **kw)
        except RuntimeError as e:
            failed[rel] = str(e)
            say(f"{rel}: FAILED after {time.time() - t:.0f} s")
            continue
        pages[page] = finish_notebook(ran, '../' * page.count('/'), doc_url)
        say(f"{rel}: {'cached' if cached else f'executed in {time.time() - t:.0f} s'}")
    return pages, failed


def _copy_images(nbs: Path, out: Path):
    "Copy the images beside the notebooks (which their markdown may show) into the site."
    for f in nbs.rglob('*'):
        rel = f.relative_to(nbs)
        if f.suffix.lower() in IMAGE_SUFFIXES and not _hidden(rel):
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, out / rel)


def _write_pages(out: Path, nbs: Path, pages: dict, site_title: str, search: bool) -> str:
    "Write the pages, with a sidebar listing every page of the site (`site.json` keeps the titles); the home page."
    manifest = out / 'site.json'
    titles = json.loads(manifest.read_text(encoding='utf-8')).get('pages', {}) if manifest.exists() else {}
    titles = {p: t for p, t in titles.items() if (out / p).exists()}
    titles.update({p: nb['metadata'].get('title', p) for p, nb in pages.items()})
    entries, home = sidebar_entries(nbs), 'index.html' if 'index.html' in titles else next(iter(titles))
    for page, nb in pages.items():
        _write(out / page, render_page(nb, page, sidebar_html(entries, titles, page), site_title, home, search))
    _write(manifest, json.dumps(dict(pages=titles), indent=1))
    return home


def build_docs(root: str | Path = '.',  # the repository (or a folder inside it)
               notebooks: list | None = None,  # to (re)build, e.g. ['index', '00_augment.ipynb']; default: all
               out: str | Path | None = None,  # the site's folder; default settings.ini's doc_path (_docs)
               use_cache: bool = True,  # reuse executed notebooks whose code (and the library) has not changed
               skip_slow: bool = False,  # skip `#| slow` cells
               timeout: int = 1800,  # seconds per cell
               cache_dir: str | Path | None = None,  # default: $STEERABLE_NB_CACHE or ~/.cache/steerable_nb
               quiet: bool = False,  # no progress lines
              ) -> Path:  # the site's folder
    """Build the offline docs site into `out`: execute, process and render the notebooks, add navigation, static
    assets and a search index. With `notebooks`, only those pages are rebuilt inside the existing site. A notebook that
    fails does not stop the others: their pages are written, then the build raises with every failure."""
    root = project_root(root)
    cfg = _settings(root)
    nbs, out = root / cfg.get('nbs_path', 'nbs'), Path(out) if out else root / cfg.get('doc_path', '_docs')
    say = (lambda *a: None) if quiet else (lambda *a: print(*a, flush=True))
    available = docs_notebooks(nbs)
    chosen = available if not notebooks else [find_notebook(str(n), nbs, available) for n in notebooks]
    if not chosen:
        raise FileNotFoundError(f"no notebooks in {nbs}")
    node_modules = js_packages(cache_dir)  # first: without npm, fail before minutes of execution
    key = _library_key(root / cfg.get('lib_path', 'steerable_nb'))
    host, base = cfg.get('doc_host', '').rstrip('/'), cfg.get('doc_baseurl', '').strip('/')
    doc_url = f"{host}/{base}/" if host else ''
    start = time.time()
    with _cwd(root):  # nbdev's processors read settings.ini from the working directory
        pages, failed = _execute_all(chosen, nbs, doc_url, say, cache_dir=cache_dir, key=key, timeout=timeout,
                                     use_cache=use_cache, skip_slow=skip_slow)
    if not pages:
        raise RuntimeError('\n\n'.join(failed.values()))
    if not notebooks and not failed and out.exists():
        shutil.rmtree(out)  # a full build replaces the old site
    out.mkdir(parents=True, exist_ok=True)
    copy_static_assets(out, node_modules)
    _copy_images(nbs, out)
    pagefind = pagefind_command(node_modules)
    home = _write_pages(out, nbs, pages, cfg.get('title', 'docs'), search=pagefind is not None)
    if pagefind is None:
        say("search: Pagefind has no binary for this platform in the npm packages; the site has no search")
    else:
        index_site(out, pagefind)
    say(f"wrote {len(pages)} page(s) to {out} in {time.time() - start:.0f} s; open {out / home} "
        f"(search needs http://, e.g. `python -m http.server -d {out}`)")
    if failed:
        raise RuntimeError(f"{len(failed)} notebook(s) failed ({', '.join(failed)}); the other pages were written "
                           f"to {out}.\n\n" + '\n\n'.join(failed.values()))
    return out


@call_parse
def main(notebooks: Param("notebooks to (re)build, e.g. index 00_augment (default: all)", str, nargs='*',
                          opt=False) = None,
         out: str = None,  # the site's folder (default: _docs)
         no_cache: store_true = False,  # execute every notebook again, even if unchanged
         skip_slow: store_true = False,  # skip `#| slow` cells
         timeout: int = 1800,  # seconds allowed per cell
        ):
    "Build the offline docs site from the notebooks: one page per notebook, navigation, figures, widgets, search."
    try:
        build_docs('.', notebooks or None, out, use_cache=not no_cache, skip_slow=skip_slow, timeout=timeout)
    except (FileNotFoundError, ValueError, RuntimeError) as e:
        raise SystemExit(f"docs_site: error: {e}") from None
