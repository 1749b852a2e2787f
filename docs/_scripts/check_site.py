"""``make docs-check``: open every page of the built site in headless Chromium and fail on a
console error, a page error, a failed request, a broken link or image, or math that MathJax
did not typeset. Saves screenshots of the home page and of one loss page to site/_check/.

Usage: python docs/_scripts/check_site.py SITE_DIR
"""

from __future__ import annotations

import functools
import http.server
import re
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import unquote, urldefrag, urljoin, urlparse

from playwright.sync_api import sync_playwright

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOT_LOSSES = ("sigmoid_focal_loss", "cross_entropy")

# Run in the page once MathJax has finished: what a reader would see of the math.
MATH_STATE = """() => {
  const nodes = [...document.querySelectorAll('.arithmatex')];
  const typeset = nodes.filter(n => n.querySelector('mjx-container svg'));
  const errors = document.querySelectorAll('mjx-merror, [data-mjx-error]').length;
  const article = document.querySelector('article') || document.body;
  const clone = article.cloneNode(true);
  clone.querySelectorAll('pre, code, mjx-container, script').forEach(n => n.remove());
  const text = clone.textContent;
  const raw = (text.match(/\\\\\\[|\\\\\\]|\\\\\\(|\\\\\\)|\\$\\$/g) || []).length;
  return {nodes: nodes.length, typeset: typeset.length, errors, raw};
}"""

IMAGES = """() => [...document.images].map(i => ({
  src: i.currentSrc || i.src, ok: i.complete && i.naturalWidth > 0,
  w: i.naturalWidth, h: i.naturalHeight}))"""

LINKS = """() => [...document.querySelectorAll('a[href]')].map(a => a.href)"""


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # noqa: ANN002
        pass


def serve(root: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    handler = functools.partial(QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def ids_of(path: Path) -> set[str]:
    return set(re.findall(r'\sid="([^"]+)"', path.read_text(errors="replace")))


def main(site: Path) -> int:
    site = site.resolve()
    pages = sorted(
        p.relative_to(site).as_posix()
        for p in site.rglob("*.html")
        if not p.relative_to(site).as_posix().startswith(("_check/", "404.html"))
    )
    if not pages:
        print(f"docs-check: no pages under {site}; run `make docs` first")
        return 1
    server, base = serve(site)
    out = site / "_check"
    out.mkdir(exist_ok=True)
    problems: list[str] = []
    external: set[str] = set()
    links_checked = images_checked = math_checked = 0
    id_cache: dict[Path, set[str]] = {}
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as profile, sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            profile,
            executable_path=CHROMIUM,
            headless=True,
            args=ARGS,
            viewport={"width": 1280, "height": 900},
        )
        page = context.new_page()
        events: list[str] = []
        page.on(
            "console",
            lambda m: events.append(f"console {m.type}: {m.text}") if m.type == "error" else None,
        )
        page.on("pageerror", lambda e: events.append(f"page error: {e}"))
        page.on("requestfailed", lambda r: events.append(f"request failed: {r.url} ({r.failure})"))
        page.on(
            "response",
            lambda r: events.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None,
        )
        loss_shot = next((n for n in SCREENSHOT_LOSSES if f"losses/{n}.html" in pages), None)
        if loss_shot is None:
            loss_shot = next(
                p[7:-5] for p in pages if p.startswith("losses/") and p != "losses/index.html"
            )
        for rel in pages:
            events.clear()
            url = urljoin(base, rel)
            page.goto(url, wait_until="load")
            has_mathjax = page.evaluate("() => !!(window.MathJax && MathJax.startup)")
            if not has_mathjax:
                problems.append(f"{rel}: MathJax did not load")
            else:
                page.wait_for_function("() => MathJax.startup.promise !== undefined", timeout=15000)
                page.evaluate("() => MathJax.startup.promise")
                math = page.evaluate(MATH_STATE)
                math_checked += math["nodes"]
                if math["typeset"] != math["nodes"]:
                    problems.append(
                        f"{rel}: {math['nodes'] - math['typeset']} of {math['nodes']} math "
                        "blocks not typeset"
                    )
                if math["errors"]:
                    problems.append(f"{rel}: {math['errors']} MathJax errors")
                if math["raw"]:
                    problems.append(f"{rel}: {math['raw']} math delimiters left as text")
            for img in page.evaluate(IMAGES):
                images_checked += 1
                if not img["ok"]:
                    problems.append(f"{rel}: broken image {img['src']}")
            for href in page.evaluate(LINKS):
                target, fragment = urldefrag(href)
                parsed = urlparse(target)
                if parsed.scheme in ("mailto", "javascript"):
                    continue
                if not target.startswith(base):
                    external.add(target)
                    continue
                links_checked += 1
                path = site / unquote(parsed.path[len(urlparse(base).path) :])
                if path.is_dir():
                    path = path / "index.html"
                if not path.is_file():
                    problems.append(f"{rel}: broken link {href}")
                    continue
                if fragment and path.suffix == ".html":
                    ids = id_cache.setdefault(path, ids_of(path))
                    if unquote(fragment) not in ids:
                        problems.append(f"{rel}: link to a missing anchor {href}")
            if rel == "index.html":
                page.screenshot(path=str(out / "home.png"))
            if rel == f"losses/{loss_shot}.html":
                page.screenshot(path=str(out / f"loss-{loss_shot}.png"))
                page.screenshot(path=str(out / f"loss-{loss_shot}-full.png"), full_page=True)
            problems += [f"{rel}: {e}" for e in events]
        context.close()
    server.shutdown()
    print(
        f"docs-check: {len(pages)} pages, {math_checked} math blocks typeset, "
        f"{images_checked} images, {links_checked} internal links checked "
        f"({len(external)} external links not fetched: offline) in "
        f"{time.perf_counter() - t0:.1f} s; screenshots in {out}"
    )
    for p in problems:
        print("docs-check: FAIL", p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else "site")))
