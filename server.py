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
    import ssl

    from aiohttp import web

    from mediastream.app import create_app
    from mediastream.process import configure_process
    from mediastream.settings import is_loopback, parse_settings
    from mediastream.web.security import RedactingAccessLogger, tls_context

    settings = parse_settings(argv)
    configure_process(settings)  # the process-wide part of the settings, once
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    log = logging.getLogger("mediastream")
    try:
        context = tls_context(settings)
    except (OSError, ssl.SSLError) as exc:
        print(f"server.py: error: cannot load --tls-cert/--tls-key: {exc}", file=sys.stderr)
        return 2
    if settings.token is None and not is_loopback(settings.host):
        log.warning(
            "serving %s WITHOUT a token (--allow-unauthenticated): anyone who can reach this "
            "address can read and delete the images",
            settings.host,
        )
    scheme = "https" if context else "http"
    web.run_app(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        ssl_context=context,
        access_log_class=RedactingAccessLogger,
        print=lambda _: log.info("serving on %s://%s:%d", scheme, settings.host, settings.port),
        shutdown_timeout=5.0,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
