#!/usr/bin/env python3
"""Entry point: ``python server.py --help``."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

# One BLAS thread per process: the snake solver's small matrix work is ~100× slower when
# OpenBLAS spreads it over threads, and requests already run in parallel. Must precede numpy.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def main(argv: Sequence[str] | None = None) -> int:
    # Imported here, not at module level: worker processes re-import this module on start,
    # and `--help` should not wait for OpenCV and aiortc to load.
    import logging

    from aiohttp import web

    from mediastream.app import create_app
    from mediastream.settings import parse_settings

    settings = parse_settings(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    app = create_app(settings)
    web.run_app(
        app,
        host=settings.host,
        port=settings.port,
        print=lambda _: logging.getLogger("mediastream").info(
            "serving on http://%s:%d", settings.host, settings.port
        ),
        shutdown_timeout=5.0,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
