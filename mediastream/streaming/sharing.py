"""Shared viewing: one presenter steers a stream, viewers watch it (docs/protocol.md, "Sharing").

A presenter's `share` creates a `Share` under a random view token (192 bits, from `secrets`);
viewers who `join` with the token get sessions of their own that follow the presenter's. What a
viewer costs: nothing to render — the presenter's player renders each picture once — and no
encode either: the share's `EncodedFanout` (`mediastream.streaming.fanout`) compresses each
picture once for all its viewers. `bench/shared.py` measures how many viewers a machine holds.

Revoking (`unshare`) or the presenter's stream ending closes every viewer's session, with the
reasons `SHARING_ENDED` and `PRESENTER_LEFT`; a revoked token is never valid again.
"""

from __future__ import annotations

import dataclasses
import secrets
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mediastream.streaming.fanout import EncodedFanout
    from mediastream.streaming.session import Session

__all__ = ["PRESENTER_LEFT", "SHARING_ENDED", "TOKEN_BYTES", "Share", "ShareRegistry"]

TOKEN_BYTES = 24  # 192 bits: not guessable, and short enough for a link
SHARING_ENDED = "sharing ended"
PRESENTER_LEFT = "presenter left"


@dataclasses.dataclass(eq=False)
class Share:
    """A presenter's stream, offered to viewers under `token`."""

    token: str
    presenter: Session
    viewers: set[Session] = dataclasses.field(default_factory=set)
    fanout: EncodedFanout | None = None  # made for the first viewer, closed with the share


class ShareRegistry:
    """The shares of one application, by view token and by presenter."""

    def __init__(self, max_viewers: int) -> None:
        if max_viewers < 1:
            raise ValueError(f"max_viewers must be at least 1, got {max_viewers}")
        self.max_viewers = max_viewers
        self._by_token: dict[str, Share] = {}

    def share(self, presenter: Session) -> Share:
        """The presenter's share: the existing one, or a new one with a fresh token."""
        existing = self.of(presenter)
        if existing is not None:
            return existing
        share = Share(secrets.token_urlsafe(TOKEN_BYTES), presenter)
        self._by_token[share.token] = share
        return share

    def of(self, presenter: Session) -> Share | None:
        return next((s for s in self._by_token.values() if s.presenter is presenter), None)

    def get(self, token: object) -> Share | None:
        """The share a view token opens, or None (unknown, malformed or revoked)."""
        return self._by_token.get(token) if isinstance(token, str) else None

    def revoke(self, share: Share) -> None:
        """Forget the share's token; its viewers are closed by the caller."""
        self._by_token.pop(share.token, None)

    def viewer_count(self) -> int:
        return sum(len(s.viewers) for s in self._by_token.values())
