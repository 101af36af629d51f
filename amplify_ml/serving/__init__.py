"""The scoring API: FastAPI app, keys, audit log, champions with hot swap.

``amplify_ml.serving.app:app`` is the app; :func:`create_app` builds one for a workspace;
:func:`serve` runs it. Importing this package loads nothing heavy.
"""

from __future__ import annotations

from pathlib import Path


def serve(workspace: Path, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve the API of ``workspace`` on ``host:port`` until interrupted (Ctrl-C)."""
    import uvicorn

    from amplify_ml.config import get_settings
    from amplify_ml.serving.app import create_app

    settings = get_settings().model_copy(update={"workspace": Path(workspace)})
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        log_level=settings.log_level,
        proxy_headers=False,
        server_header=False,
    )


__all__ = ["serve"]
