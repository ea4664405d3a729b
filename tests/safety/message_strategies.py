"""Hypothesis strategies for protocol messages (docs/protocol.md): random JSON, messages of
the right type with garbage fields, random text and bytes.

Numbers get special care: integers beyond a float's range, beyond 64 bits, NaN and infinities
(Python's json writes and reads them), each in every numeric field on its own.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

import segmentation

Message = dict[str, Any]

# Numbers that break number handling: beyond a float's range, beyond 64 bits, extremes.
_HUGE_INTEGERS = st.sampled_from([10**400, -(10**400), 2**1024, 10**4000])
_AWKWARD_NUMBERS = _HUGE_INTEGERS | st.sampled_from(
    [0, -1, 1, 2**31, 2**53 + 1, 2**63, 2**64 + 1, 1e308, -1e308, 5e-324, -0.0]
)
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()  # NaN and ±Infinity too: Python's json writes and reads them
    | st.text(max_size=20)
    | _AWKWARD_NUMBERS
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
numbers = st.one_of(_HUGE_INTEGERS, _AWKWARD_NUMBERS, st.integers(), st.floats())

_PARAM_NAMES = sorted(
    {
        name
        for algorithm in segmentation.algorithm_names()
        for name in segmentation.get_algorithm(algorithm).schema()["params"]
    }
)
# Plausible values first (they reach deeper validation), then any JSON at all.
_STATE_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "series": st.sampled_from(["", "1.2.3", "..", "9" * 65]) | json_values,
    "algorithm": st.sampled_from(segmentation.algorithm_names()) | json_values,
    "params": st.dictionaries(
        st.sampled_from(_PARAM_NAMES) | st.text(max_size=8), numbers | json_values, max_size=4
    )
    | json_values,
    "image_delay": numbers | json_values,
    "window": st.none()
    | st.fixed_dictionaries({"center": numbers, "width": numbers})
    | st.dictionaries(st.sampled_from(["center", "width", "name"]), json_values, max_size=3)
    | json_values,
    "playing": st.booleans() | json_values,
    "index": st.integers(-3, 12) | _AWKWARD_NUMBERS | json_values,
}
_SEQS = st.integers() | _AWKWARD_NUMBERS | json_values


def _one_field(name: str) -> st.SearchStrategy[Message]:
    return st.fixed_dictionaries(
        {"type": st.just("update"), "seq": st.integers(0, 10**6), name: _STATE_FIELDS[name]}
    )


# One field at a time (so each validator meets garbage, and the algorithm's parameters meet it
# under each algorithm), every field at once, and fields the state does not have.
_one_field_updates = st.sampled_from(sorted(_STATE_FIELDS)).flatmap(_one_field)
_algorithm_params_updates = st.fixed_dictionaries(
    {
        "type": st.just("update"),
        "seq": st.integers(0, 10**6),
        "algorithm": st.sampled_from(segmentation.algorithm_names()),
        "params": _STATE_FIELDS["params"],
    }
)
_many_field_updates = st.fixed_dictionaries(
    {"type": st.just("update")}, optional={"seq": _SEQS, **_STATE_FIELDS}
)
_odd_updates = st.fixed_dictionaries(
    {"type": st.just("update"), "count": json_values},  # read-only
    optional={"junk": json_values, "seq": _SEQS, **_STATE_FIELDS},
)


def _numeric_params(algorithm: str) -> st.SearchStrategy[Message]:
    names = sorted(segmentation.get_algorithm(algorithm).schema()["params"])
    return st.fixed_dictionaries(
        {
            "type": st.just("update"),
            "seq": st.integers(0, 10**6),
            "algorithm": st.just(algorithm),
            "params": st.dictionaries(st.sampled_from(names), numbers, min_size=1, max_size=3),
        }
    )


# Only numbers, in every numeric field: what number handling must survive.
_numeric_updates = st.one_of(
    st.fixed_dictionaries(
        {"type": st.just("update"), "seq": st.integers(0, 10**6), "image_delay": numbers}
    ),
    st.fixed_dictionaries(
        {"type": st.just("update"), "seq": st.integers(0, 10**6), "index": numbers}
    ),
    st.fixed_dictionaries(
        {
            "type": st.just("update"),
            "seq": st.integers(0, 10**6),
            "window": st.fixed_dictionaries({"center": numbers, "width": numbers}),
        }
    ),
    st.sampled_from(
        [
            a
            for a in segmentation.algorithm_names()
            if segmentation.get_algorithm(a).schema()["params"]
        ]
    ).flatmap(_numeric_params),
)
updates = st.one_of(
    _numeric_updates,
    _one_field_updates,
    _algorithm_params_updates,
    _many_field_updates,
    _odd_updates,
)

_CANDIDATE_LINES = st.sampled_from(
    [
        "candidate:1 1 udp 2130706431 127.0.0.1 9 typ host",
        "candidate:1 1 udp 2130706431 127.0.0.1 70000 typ host",
        "candidate:1 1 udp 2130706431 999.1.1.1 9 typ host",
        "candidate:1 1 udp 2130706431 ::1 9 typ host",
        "candidate:1 1 tcp 1 127.0.0.1 9 typ host tcptype active",
        "candidate:1 1 udp 1 127.0.0.1 9 typ relay",
        "candidate:1 1 udp 1 127.0.0.1 9 typ srflx raddr",
        "candidate:1 1 udp",
        "candidate:",
        "candidate:x y z w v u t s",
    ]
)
candidates = st.fixed_dictionaries(
    {"type": st.just("candidate")},
    optional={
        "candidate": _CANDIDATE_LINES
        | st.text(max_size=60).map(lambda t: "candidate:" + t)
        | json_values,
        "sdpMid": json_values,
        "sdpMLineIndex": json_values,
    },
)

# The session lines of an aiortc offer. No variant below has a usable video section (codecs,
# ICE credentials, a DTLS fingerprint), so none can start a stream: each must be refused.
SDP_HEAD = (
    "v=0\r\no=- 3927000000 3927000000 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
    "a=group:BUNDLE 0\r\na=msid-semantic:WMS *\r\n"
)
garbage_sdps = (
    st.text(max_size=200)
    | st.text(max_size=200).map(lambda t: "v=0\r\n" + t)
    | st.text(max_size=200).map(lambda t: SDP_HEAD + t)
    | st.sampled_from(
        [
            SDP_HEAD,
            SDP_HEAD + "m=audio 9 UDP/TLS/RTP/SAVPF 0\r\nc=IN IP4 0.0.0.0\r\n",
            SDP_HEAD + "m=video 9 UDP/TLS/RTP/SAVPF\r\n",
            SDP_HEAD + "m=video x y z\r\n",
            "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 97\r\n",
        ]
    )
    | json_values
)
offers = st.fixed_dictionaries(
    # mostly strings: only an offer with a non-empty SDP string gets its state checked
    {"type": st.just("offer"), "sdp": st.text(min_size=1, max_size=40) | garbage_sdps},
    optional={
        "state": st.sampled_from(sorted(_STATE_FIELDS)).flatmap(
            lambda name: st.fixed_dictionaries({name: _STATE_FIELDS[name]})
        )
        | st.fixed_dictionaries({}, optional=_STATE_FIELDS)
        | json_values
    },
)
other_messages = st.fixed_dictionaries(
    {"type": st.sampled_from(["ping", "auth", "hello", "answer", "state", "frame", "", "UPDATE"])},
    optional={"id": json_values, "token": json_values, "seq": json_values},
)
random_objects = st.dictionaries(st.sampled_from(["type", "sdp", "seq", "id"]), json_values)


def encoded(messages: st.SearchStrategy[Any]) -> st.SearchStrategy[str]:
    """Messages as the text frames a client sends (NaN and Infinity as Python writes them)."""
    return messages.map(json.dumps)


# Each mix lists its branches explicitly; a branch listed twice is drawn about twice as often.
raw_frames: st.SearchStrategy[str | bytes] = st.one_of(
    encoded(json_values | random_objects | other_messages),
    st.text(max_size=300),
    st.binary(max_size=300),
)
stops = st.fixed_dictionaries({"type": st.just("stop")}, optional={"junk": json_values})
websocket_frames_without_a_stream = st.one_of(
    raw_frames,
    encoded(offers),
    encoded(offers),
    encoded(candidates),
    encoded(updates),
    encoded(stops),
)
# With a live stream, "stop" is a valid request to end it, so it is not fuzzed there.
websocket_frames_with_a_stream = st.one_of(
    raw_frames, encoded(offers), encoded(candidates), encoded(updates)
)
channel_frames = st.one_of(encoded(updates), encoded(updates), raw_frames)
