"""Properties, checked with hypothesis: the input rules either accept or refuse with BadInput
(never another exception), local names are always safe, Range requests over real HTTP answer the
exact bytes or a 4xx, and paging through a listing loses and repeats nothing, in every order."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assetfiles.client.naming import safe_component
from assetfiles.errors import BadInput
from assetfiles.model import ChannelId, check_content_name
from assetfiles.service.contents import check_media_type
from tests.backends import local_blobs_only
from tests.conftest import RW
from tests.helpers import Server

HTTP = settings(max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck))
UNITS = settings(max_examples=400, deadline=None, database=None)
TOKEN_CHARS = st.sampled_from("abcxyz019-_.+/*;= \t\x00\u202e\u200b\ufeffé/")


@UNITS
@given(st.text())
def test_content_names_are_accepted_or_refused_with_bad_input(name: str) -> None:
    try:
        checked = check_content_name(name)
    except BadInput as exc:
        assert exc.field == "name"
        return
    # stored as given, but printable and valid Unicode: it can always be encoded into JSON and UTF-8
    assert checked == name and checked.strip()
    checked.encode("utf-8")
    assert not any(ord(ch) < 32 or ord(ch) == 127 for ch in checked)


@UNITS
@given(st.text())
def test_local_names_are_always_safe(name: str) -> None:
    local = safe_component(name)
    assert local not in ("", ".", "..")
    assert not re.search(r"[/\\\x00-\x1f\x7f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]", local), local
    assert len(local.encode("utf-8", "surrogatepass")) <= 255


@UNITS
@given(st.one_of(st.text(), st.text(TOKEN_CHARS)))
def test_media_types_are_accepted_or_refused_with_bad_input(value: str) -> None:
    try:
        checked = check_media_type(value, field="contentType")
    except BadInput as exc:
        assert exc.field == "contentType"
        return
    checked.encode("latin-1")  # every accepted type can go into a Content-Type header
    assert "/" in checked and not any(ord(ch) < 32 or ord(ch) == 127 for ch in checked)


@UNITS
@given(st.one_of(st.text(), st.lists(st.text(TOKEN_CHARS, max_size=6), max_size=5).map(".".join)))
def test_channel_ids_are_parsed_or_refused_with_bad_input(value: str) -> None:
    try:
        parsed = ChannelId.parse(value, field="channel")
    except BadInput:
        return
    assert str(parsed) == value


# -- over HTTP, against the shared world -------------------------------------------------------------


@pytest.fixture(scope="module")
def blob(server: Server) -> tuple[str, bytes]:
    """A signed URL of the 1 MiB + 17 bytes file, and those bytes."""
    listing = server.data(
        '{ assetContents(filters: {association: {type: "asset", id: "a-pump-7"}, name: "data*"}) '
        "{ assetContents { url } } }"
    )["assetContents"]["assetContents"]
    return listing[0]["url"], server.files["files/data.bin"]


RANGE_SPEC = st.one_of(
    st.tuples(st.integers(0, 1_100_000), st.integers(0, 1_100_000)).map(lambda r: f"bytes={r[0]}-{r[1]}"),
    st.integers(0, 1_100_000).map(lambda n: f"bytes={n}-"),
    st.integers(0, 1_100_000).map(lambda n: f"bytes=-{n}"),
    st.text(st.sampled_from("bytes=-,0123456789x"), max_size=30),
)


@local_blobs_only  # with S3 blobs the URL is the object store's (SeaweedFS checks its ranges), not ours
@HTTP
@given(spec=RANGE_SPEC)
def test_range_requests_answer_exact_bytes_or_a_4xx(
    server: Server, blob: tuple[str, bytes], spec: str
) -> None:
    url, data = blob
    answer = server.get(url, headers={"Range": spec})
    assert answer.status_code in (200, 206, 400, 416), (spec, answer.status_code)
    if answer.status_code == 206:
        first, last = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+)", answer.headers["content-range"]).groups()[:2]  # type: ignore[union-attr]
        assert answer.content == data[int(first) : int(last) + 1]
    elif answer.status_code == 200:
        assert answer.content == data


PAGE = """query($limit: Int, $offset: Int, $order: ContentOrderBy, $sort: SortOrder) {
  assetContents(filters: {association: {type: "asset", id: "a-list"}, orderBy: $order, sort: $sort},
                pagination: {limit: $limit, offset: $offset}) { totalCount assetContents { id } } }"""


@HTTP
@given(
    limit=st.integers(1, 40),
    order=st.sampled_from(["updated_at", "created_at", "name", "length"]),
    sort=st.sampled_from(["asc", "desc"]),
)
def test_paging_loses_and_repeats_nothing(server: Server, limit: int, order: str, sort: str) -> None:
    seen: list[str] = []
    offset, total = 0, None
    while total is None or offset < total:
        page = server.data(PAGE, {"limit": limit, "offset": offset, "order": order, "sort": sort}, token=RW)
        total = page["assetContents"]["totalCount"]
        seen += [item["id"] for item in page["assetContents"]["assetContents"]]
        offset += limit
    everything = server.data(PAGE, {"limit": 1000, "offset": 0, "order": order, "sort": sort}, token=RW)
    assert len(seen) == len(set(seen)) == total
    assert seen == [item["id"] for item in everything["assetContents"]["assetContents"]]
