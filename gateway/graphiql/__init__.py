"""GraphiQL served by the gateway itself: the page, its Content-Security-Policy and its assets.

Users run the gateway in networks without internet access, so nothing here refers to a CDN:
React and GraphiQL are vendored under static/ (README.md beside this file says from where).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

PACKAGE_DIR = Path(__file__).parent
STATIC_DIR = PACKAGE_DIR / "static"
# Where app.py mounts STATIC_DIR; page.html refers to it as "graphiql/…", relative to /graphql.
ASSETS_PATH = "/graphiql"
# Asset paths carry the package version (static/graphiql-3.8.3/…), so a refresh changes the
# URL and browsers may keep what they have for a year.
ASSET_CACHE_CONTROL = "public, max-age=31536000, immutable"

EXAMPLE_QUERY = """\
# 示例 / Example: one market subject, its joint punishment
# status and what each department answered.
# 运行 / Run: Ctrl-Enter or ▶
# API 密钥 / An API key goes in Headers below:
#   {"Authorization": "Bearer <key>"}
# 请求头不会保存在浏览器中 / Headers are never stored.
query Subject($uscc: String!) {
  subject(uscc: $uscc) {
    uscc
    name
    jointPunishment(scenario: CREDIT_LOAN) {
      status
      complete
      missingSources
      listings { id kind title }
      measures { measure { code name } }
    }
    supervision { creditClass spotCheckRatio }
    sources { department state asOf message }
  }
}
"""

_TEMPLATE = (PACKAGE_DIR / "page.html").read_text(encoding="utf-8")
_SETTINGS = "{{settings}}"
# page.html's own code sits in attribute-less <script> and <style> elements; its settings
# <script type="application/json"> is data, which browsers never run.
_INLINE = re.compile(r"<(script|style)>(.*?)</\1>", re.DOTALL)


def _csp_hash(source: str) -> str:
    """The CSP source that lets exactly this inline code run."""
    digest = hashlib.sha256(source.encode("utf-8")).digest()
    return f"'sha256-{base64.b64encode(digest).decode('ascii')}'"


def _content_security_policy(template: str) -> str:
    """Built once at import: this origin, plus the hashes of the page's inline script and style."""
    hashes: dict[str, list[str]] = {"script": [], "style": []}
    for tag, source in _INLINE.findall(template):
        if _SETTINGS in source:
            raise ValueError(f"page.html: an inline <{tag}> must not change with the config")
        hashes[tag].append(_csp_hash(source))
    return "; ".join(
        [
            "default-src 'none'",
            f"script-src 'self' {' '.join(hashes['script'])}",
            # GraphiQL's editors and menus set element.style from script, which CSP allows.
            # Its dialogs add a scroll-lock <style> that is refused (a console error), and
            # harmlessly so: this page never scrolls. No 'unsafe-inline' for that.
            f"style-src 'self' {' '.join(hashes['style'])}",
            # graphiql.min.css embeds its fonts (Roboto, Fira Code) as data: URLs.
            "font-src 'self' data:",
            "img-src 'self' data:",
            # The fetcher posts to /graphql; 'self' covers ws(s):// to this host for later
            # subscriptions.
            "connect-src 'self'",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )


CONTENT_SECURITY_POLICY = _content_security_policy(_TEMPLATE)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    # The page carries the configured example; a changed config shows at the next load.
    "Cache-Control": "no-cache",
}


def page_html(example_uscc: str) -> str:
    """The page for `[graphiql] example_uscc`; built once when the GraphQL view is."""
    settings = {
        "query": EXAMPLE_QUERY,
        "variables": json.dumps({"uscc": example_uscc}, indent=2),
    }
    encoded = json.dumps(settings, ensure_ascii=False)
    # Inside <script> the text must not close the element or open a comment.
    for char, escape in (("&", "\\u0026"), ("<", "\\u003c"), (">", "\\u003e")):
        encoded = encoded.replace(char, escape)
    return _TEMPLATE.replace(_SETTINGS, encoded)


def page_response(html: str) -> HTMLResponse:
    """Answers a browser's GET /graphql when `[graphiql] enabled`."""
    return HTMLResponse(html, headers=PAGE_HEADERS)


async def redirect_to_ide(request: Request) -> RedirectResponse:
    """GET /: a browser opening the gateway's address lands in GraphiQL."""
    return RedirectResponse(f"{request.scope.get('root_path', '')}/graphql")


class AssetFiles(StaticFiles):
    """The vendored assets, mounted at ASSETS_PATH when `[graphiql] enabled`."""

    def __init__(self) -> None:
        super().__init__(directory=STATIC_DIR)

    def file_response(
        self,
        full_path: str | os.PathLike[str],
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        """Starlette's file answer with the long cache header."""
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers["Cache-Control"] = ASSET_CACHE_CONTROL
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response
