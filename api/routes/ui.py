"""/ui: the graph view, a static page over the JSON API (search, expand, ask with evidence).

The page and its files are public: they hold no data, and every data call the page makes sends
the API key that the user enters in it. cytoscape.js is vendored in ``api/static/vendor/``
(``scripts/build_ui.sh``), so the page loads nothing from outside the API.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

router = APIRouter(tags=["ui"])

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
STATIC_PATH = "/ui/static"
# Only the API's own origin: no script, style or connection elsewhere. Inline styles are
# allowed because cytoscape.js and the page set element styles (type colours) from script.
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self' "
                           "'unsafe-inline'; img-src 'self' data:; connect-src 'self'; "
                           "frame-ancestors 'none'; base-uri 'none'; form-action 'none'")


@router.get("/ui", include_in_schema=False)
def graph_view() -> FileResponse:
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html", headers={
        "Content-Security-Policy": CONTENT_SECURITY_POLICY,
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-cache",
    })


def mount_static(app: FastAPI) -> None:
    """Serve the page's script, style and vendored library under ``/ui/static``."""
    app.mount(STATIC_PATH, StaticFiles(directory=STATIC_DIR), name="ui-static")
