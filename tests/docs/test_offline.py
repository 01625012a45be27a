"""The built site works offline and from files: ``open site/index.html`` is enough.

No page loads a script, a style sheet or a font from another host (Mermaid and
the iframe-worker shim are bundled by docs/hooks/offline_assets.py, fonts are
the system's), every internal link names a file that exists (not a directory:
over ``file://`` a directory opens as a listing), and in real headless Chromium
with the network off, a page opened from its file draws its Mermaid diagrams
and the search finds pages.
"""

from __future__ import annotations

import json
import os
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
import trio

from tests.browser.cdp import Browser, Page, chromium_path, connect_browser, launch_chromium

pytestmark = pytest.mark.timeout(300)

#: Tag -> the attributes that load or link something.
_URL_ATTRIBUTES = {
    "a": ("href",),
    "link": ("href",),
    "script": ("src",),
    "img": ("src",),
    "iframe": ("src",),
    "source": ("src",),
}


class _Links(HTMLParser):
    """Collects ``(tag, rel, url)`` of every loading or linking attribute, and every id."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[tuple[str, str, str]] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if "id" in values:
            self.ids.add(values["id"])
        for attribute in _URL_ATTRIBUTES.get(tag, ()):
            if attribute in values:
                self.urls.append((tag, values.get("rel", ""), values[attribute]))


def _parse(page: Path) -> _Links:
    parser = _Links()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser


def _is_external(url: str) -> bool:
    return bool(urlsplit(url).scheme) or url.startswith("//")


def _pages(site: Path) -> list[Path]:
    pages = sorted(site.rglob("*.html"))
    assert len(pages) >= 15
    return pages


def test_no_page_loads_a_script_style_or_font_from_another_host(site: Path) -> None:
    loaded_from_elsewhere = [
        f"{page.relative_to(site)}: <{tag} rel={rel!r}> {url}"
        for page in _pages(site)
        for tag, rel, url in _parse(page).urls
        if tag != "a" and _is_external(url) and not url.startswith("data:")
    ]
    assert not loaded_from_elsewhere, loaded_from_elsewhere
    for sheet in site.rglob("*.css"):
        css = sheet.read_text(encoding="utf-8")
        assert not re.search(r"@import|url\(\s*['\"]?(https?:)?//", css), sheet
    # What Material would otherwise fetch from unpkg.com is in the site.
    assert (site / "assets" / "vendor" / "mermaid.min.js").stat().st_size > 1_000_000
    assert (site / "assets" / "vendor" / "iframe-worker-shim.js").is_file()
    assert (site / "search" / "search_index.js").is_file(), "the offline plugin's inlined index"


def test_the_check_sees_an_external_script(tmp_path: Path) -> None:
    """The parser above does find a CDN script (the test can fail)."""
    page = tmp_path / "page.html"
    page.write_text('<script src="https://unpkg.com/mermaid@11/dist/mermaid.min.js"></script>')
    assert [url for _, _, url in _parse(page).urls if _is_external(url)]


def test_every_internal_link_names_a_file_of_the_site(site: Path) -> None:
    broken = []
    checked = 0
    ids: dict[Path, set[str]] = {}
    # 404.html is what a web server answers for any unknown path, so its links are
    # absolute (from the site's root); from files it is never opened.
    for page in (page for page in _pages(site) if page.name != "404.html"):
        for tag, _, url in _parse(page).urls:
            if _is_external(url):
                continue
            parts = urlsplit(url)
            target = (page.parent / unquote(parts.path)).resolve() if parts.path else page
            checked += 1
            if not target.is_file():
                broken.append(f"{page.relative_to(site)}: <{tag}> {url} (not a file)")
            elif parts.fragment and target.suffix == ".html":
                if target not in ids:
                    ids[target] = _parse(target).ids
                if unquote(parts.fragment) not in ids[target]:
                    broken.append(f"{page.relative_to(site)}: {url} (no such anchor)")
    assert checked > 1000
    assert not broken, broken


def _chromium_or_skip() -> None:
    if chromium_path() is None:
        message = "no chromium: run scripts/install-browser-deps.sh"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


async def _open_offline(browser: Browser, url: str) -> Page:
    """Open a blank tab, cut its network (``file://`` still loads), then go to ``url``."""
    page = await browser.open_page("about:blank")
    await page.send("Network.enable")
    await page.send(
        "Network.emulateNetworkConditions",
        offline=True,
        latency=0,
        downloadThroughput=-1,
        uploadThroughput=-1,
    )
    await page.send("Page.navigate", url=url)
    return page


async def _wait_for(page: Page, expression: str) -> None:
    """Return once the JavaScript ``expression`` is true, checked after every change of the DOM."""
    await page.evaluate(
        "new Promise(resolve => {"
        f" const check = () => {{ if ({expression}) {{ observer.disconnect(); resolve(true); }} }};"
        " const observer = new MutationObserver(check);"
        " observer.observe(document, {childList: true, subtree: true, attributes: true});"
        " check(); })"
    )


#: The pages with Mermaid diagrams, and how many each has (the site's 15).
DIAGRAMS = {"protocol.html": 12, "concepts.html": 3}


@pytest.mark.slow
@pytest.mark.trio
async def test_diagrams_render_and_search_works_from_files_offline(
    site: Path, tmp_path: Path
) -> None:
    _chromium_or_skip()
    for name, count in DIAGRAMS.items():
        assert (site / name).read_text(encoding="utf-8").count('<pre class="mermaid">') == count
    with launch_chromium(window=(1300, 1400)) as devtools_url:
        async with connect_browser(devtools_url) as browser:
            for name, count in DIAGRAMS.items():
                url = (site / name).as_uri()
                page = await _open_offline(browser, url)
                with trio.fail_after(60):
                    # Material swaps each <pre class="mermaid"> for a <div class="mermaid">
                    # holding the SVG once Mermaid has drawn it.
                    await _wait_for(
                        page,
                        f"location.href === {json.dumps(url)}"
                        " && !document.querySelector('pre.mermaid')"
                        f" && document.querySelectorAll('div.mermaid').length === {count}",
                    )
                heights = await page.evaluate(
                    "[...document.querySelectorAll('div.mermaid')].map(d => d.offsetHeight)"
                )
                assert all(height > 100 for height in heights), (name, heights)
                assert await page.evaluate("typeof mermaid") == "object"
                shot = await page.screenshot(tmp_path / name.replace(".html", ".png"))
                print(f"screenshot: {shot}")

            await page.evaluate(
                "(() => { const input = document.querySelector('.md-search__input');"
                " input.focus(); input.value = 'greeting';"
                " input.dispatchEvent(new Event('input')); })()"
            )
            with trio.fail_after(60):
                await _wait_for(page, "document.querySelectorAll('.md-search-result__item').length")
            errors = [line for line in page.console if "error" in line.lower()]
            assert not errors, errors
