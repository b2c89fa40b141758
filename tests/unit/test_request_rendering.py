"""What every request pays for, rendered cheaply: a signed URL's parameters, the access line."""

from __future__ import annotations

import io
import json
import logging
from datetime import UTC, datetime

import pytest
from starlette.requests import Request

from assetfiles.logs import JsonLines, log_with_fields
from assetfiles.server.auth import signed_parameters


def _request(query: bytes) -> Request:
    return Request({"type": "http", "method": "GET", "path": "/", "query_string": query, "headers": []})


@pytest.mark.parametrize(
    "query",
    [
        b"org=o-1&exp=1800000000&sig=abc_-XYZ",
        b"",
        b"org=o-1",
        b"org=&exp=&sig=",  # blanks are kept (and refused by the signature check)
        b"org&exp&sig",
        b"org=a&org=b&exp=1&sig=s",  # the last of a repeated name wins
        b"other=1&&sig=s&exp=2&org=o",
        b"org=o%2D1&exp=1&sig=a%2Bb",  # escaped: decoded in full
        b"org=o+1&exp=1&sig=s",
        b"org=%zz&exp=1&sig=s",
        b"org=caf\xc3\xa9&exp=1&sig=s",
    ],
)
def test_signed_parameters_are_read_as_the_query_params_read_them(query: bytes) -> None:
    request = _request(query)
    params = _request(query).query_params
    assert signed_parameters(request) == (params.get("org"), params.get("exp"), params.get("sig"))


@pytest.mark.parametrize("created", [0.0, 1764858941.0, 1764858941.0004, 1764858941.9996, 1764858942.123456])
def test_json_line_times_are_iso_8601_milliseconds_in_utc(created: float) -> None:
    record = logging.makeLogRecord({"msg": "m", "created": created})
    line = json.loads(JsonLines().format(record))
    expected = datetime.fromtimestamp(int(created), UTC).isoformat()
    assert line["time"] == f"{expected[:19]}.{int(created % 1 * 1000):03d}+00:00"
    assert datetime.fromisoformat(line["time"]).timestamp() == pytest.approx(created, abs=0.001)


def test_a_line_with_fields_reaches_the_handlers_as_logging_would_make_it() -> None:
    logger = logging.getLogger("assetfiles.test-fields")
    logger.propagate = False
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonLines())
    logger.addHandler(handler)
    try:
        logger.setLevel(logging.INFO)
        fields = {"status": 200, "path": "/x", "principal": None, "request_id": "r-1"}
        log_with_fields(logger, logging.INFO, "%s %d", ("GET", 200), fields)
        logger.info("%s %d", "GET", 200, extra=fields)
        made, reference = (json.loads(line) for line in stream.getvalue().splitlines())
        assert made.pop("time")[:16] == reference.pop("time")[:16]
        assert made == reference == {
            "level": "INFO", "logger": "assetfiles.test-fields", "message": "GET 200", **fields
        }  # fmt: skip
        logger.setLevel(logging.WARNING)
        log_with_fields(logger, logging.INFO, "dropped", (), {})
        assert len(stream.getvalue().splitlines()) == 2
    finally:
        logger.removeHandler(handler)
