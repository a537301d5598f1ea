"""The web console: plain static files (HTML, JavaScript modules, CSS) with no build step.

The HTTP application serves :data:`STATIC_DIR` at ``/console``; the console talks to the API
on the same origin with ``fetch`` and the ``X-API-Key`` header. See ``docs/console.md``.
"""

from __future__ import annotations

from pathlib import Path

STATIC_DIR: Path = Path(__file__).resolve().parent / "static"
"""Directory holding ``index.html``, ``app.js``, ``style.css`` and the other modules."""

__all__ = ["STATIC_DIR"]
