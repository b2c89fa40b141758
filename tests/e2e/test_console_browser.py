"""The console in a real browser (Debian's Chromium, headless, driven by Playwright) against a real
server: sign in, browse, filter, page, preview, upload, tag, download, delete, read-only tokens,
and hostile names and contents that must run nothing.

Screenshots of each main view, desktop and phone widths, go to ``ASSETFILES_SCREENSHOTS`` when
it is set (docs/console.md shows the ones taken with ``ASSETFILES_SCREENSHOTS=docs/console``).
"""

from __future__ import annotations

import hashlib
import os
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browser import chromium, skip_reason
from tests.cutproxy import CutProxy
from tests.helpers import Server, seed_and_start

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(skip_reason() is not None, reason=skip_reason() or ""),
]

if skip_reason() is None:
    from playwright.sync_api import Browser, ConsoleMessage, Dialog, Page, expect

RW = "tok-console-rw-0123456789"
RO = "tok-console-ro-0123456789"
DEMO_FILES = Path(__file__).parents[2] / "src" / "assetfiles" / "demo" / "files"
HOSTILE_NAME = "<img src=x onerror=alert(1)>"
HOSTILE_TAG = "<b onmouseover=alert(4)>x</b>"
SVG = (
    b'<svg xmlns="http://www.w3.org/2000/svg" width="40" height="40" onload="alert(2)">'
    b'<script>alert(3)</script><rect width="40" height="40" fill="teal"/></svg>'
)
ITEMS = 55
CSV_ROWS = 5000


def _csv() -> bytes:
    return b"time,temperature\n" + b"".join(
        f"2026-11-01T00:{i:05d},{20 + i % 7}.5\n".encode() for i in range(CSV_ROWS)
    )


def _world() -> tuple[dict[str, Any], dict[str, bytes]]:
    rng = random.Random(7)
    files = {
        "files/manual.pdf": (DEMO_FILES / "manual.pdf").read_bytes(),
        "files/nameplate.png": (DEMO_FILES / "nameplate.png").read_bytes(),
        "files/log.csv": _csv(),
        "files/hostile.txt": b"<script>alert(5)</script> plain text\n",
        "files/evil.svg": SVG,
        "files/device-log.csv": b"t,v\n1,2\n",
        "files/firmware.bin": rng.randbytes(4096),
    }
    content: list[dict[str, Any]] = [
        {"path": "files/manual.pdf", "content_type": "application/pdf", "tags": {"kind": "manual"}},
        {"path": "files/nameplate.png", "tags": {"kind": "photo"}},
        {"path": "files/log.csv", "tags": {"kind": "log"}},
        {
            "path": "files/hostile.txt",
            "name": HOSTILE_NAME,
            "content_type": "text/plain",
            "tags": {"note": HOSTILE_TAG},
        },
        {"path": "files/evil.svg", "content_type": "image/svg+xml"},
        {"path": "files/firmware.bin", "enos_category": "ota"},
        {"path": "files/device-log.csv", "created_by": {"device": "p1.dev-1"}},
    ]
    for index in range(ITEMS):
        path = f"files/items/item-{index:02d}.txt"
        files[path] = f"item {index}\n".encode()
        content.append({"path": path, "tags": {"parity": "even" if index % 2 == 0 else "odd"}})
    document = {
        "organizations": [
            {
                "id": "o-console",
                "name": "Console Org",
                "tokens": [
                    {"name": "operator", "secret": RW, "permissions": ["read", "write"]},
                    {"name": "viewer", "secret": RO, "permissions": ["read"]},
                ],
                "products": [{"id": "p1", "devices": [{"id": "dev-1", "secret": "dev-1-secret-0123"}]}],
                "assets": [
                    {
                        "id": "a-boiler",
                        "name": "Boiler 3",
                        "description": "Hall B boiler",
                        "signals": [{"id": "s-t", "name": "Temp", "channel": "p1.dev-1.data_in.temp"}],
                        "content": content,
                    },
                    {"id": "a-fan", "name": "Fan 1", "signals": []},
                ],
            }
        ]
    }
    return document, files


@pytest.fixture(scope="module")
def console_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    document, files = _world()
    running = seed_and_start(tmp_path_factory.mktemp("console"), document, files)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


class Watch:
    """Everything a page does that it must not: dialogs (alert), script errors, console errors."""

    def __init__(self, page: Page) -> None:
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        page.on("dialog", self._dialog)
        page.on("pageerror", lambda error: self.errors.append(f"pageerror: {error}"))
        page.on("console", self._console)

    def _dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(f"console: {message.text}")

    def assert_clean(self) -> None:
        assert self.dialogs == [], self.dialogs
        assert self.errors == [], self.errors


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    opened = context.new_page()
    opened.set_default_timeout(15_000)
    yield opened
    context.close()


def screenshot(page: Page, name: str) -> None:
    target = os.environ.get("ASSETFILES_SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(target) / f"{name}.png"))


def sign_in(page: Page, server: Server, token: str = RW, *, keep: bool = False) -> None:
    page.goto(f"{server.base_url}/console")
    page.get_by_label("API token").fill(token)
    if keep:
        page.get_by_label("Keep me signed in on this browser").check()
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Assets")).to_be_visible()


def open_asset(page: Page) -> None:
    page.get_by_role("link", name="Boiler 3").click()
    expect(page.get_by_role("heading", name="Boiler 3")).to_be_visible()
    expect(page.locator("#files-count")).to_contain_text("Files 1–50 of ")


def file_count(page: Page) -> int:
    text = page.locator("#files-count").inner_text()
    return int(text.rsplit(" ", 1)[1].replace(",", ""))


def details(page: Page, name: str) -> None:
    """Find a file by its name with the name filter, and open its details."""
    page.get_by_label("Name (* and ? match)").fill(name)
    page.get_by_role("button", name="Apply").click()
    expect(page.locator("#files-count")).to_have_text("Files 1–1 of 1")
    page.get_by_role("button", name=name, exact=True).click()
    expect(page.locator("#details h2")).to_have_text(name)


def api(server: Server, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    return server.data(query, variables, token=RW)


def test_sign_in_find_filter_page_and_sort(page: Page, console_server: Server) -> None:
    watch = Watch(page)
    page.goto(f"{console_server.base_url}/console")
    screenshot(page, "sign-in-desktop")
    # Keyboard only: the token field, Enter to submit.
    page.get_by_label("API token").focus()
    page.keyboard.type(RW)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Assets")).to_be_visible()
    assert RW not in page.url
    assert page.evaluate("sessionStorage.getItem('assetfiles.token')") == RW
    assert page.evaluate("localStorage.getItem('assetfiles.token')") is None
    expect(page.locator("#who")).to_contain_text("operator · o-console · read and write")

    page.get_by_label("Search assets by name or id").fill("boil")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("#assets-count")).to_have_text("1 asset")
    expect(page.locator(".asset-card .devices")).to_have_text("Devices: p1/dev-1")
    screenshot(page, "assets-desktop")
    open_asset(page)
    screenshot(page, "files-desktop")

    page.get_by_label("Name (* and ? match)").fill("item-*")
    page.get_by_label("Per page").select_option("25")  # applies at once
    expect(page.locator("#files-count")).to_have_text("Files 1–25 of 55")
    page.get_by_label("Sort by").select_option("name")
    page.get_by_label("Order").select_option("asc")
    expect(page.locator("#files tbody tr").first).to_contain_text("item-00.txt")
    page.locator("#files-pager").get_by_role("button", name="Next").click()
    expect(page.locator("#files-count")).to_have_text("Files 26–50 of 55")
    expect(page.locator("#files tbody tr").first).to_contain_text("item-25.txt")
    expect(page.locator("#files-pager")).to_contain_text("Page 2 of 3")

    page.get_by_label("Tags (name=value, comma-separated)").fill("parity=even")
    page.get_by_role("button", name="Apply").click()
    expect(page.locator("#files-count")).to_have_text("Files 1–25 of 28")
    page.get_by_label("Content types (comma-separated)").fill("image/png")
    page.get_by_label("Name (* and ? match)").fill("")
    page.get_by_label("Tags (name=value, comma-separated)").fill("")
    page.get_by_role("button", name="Apply").click()
    expect(page.locator("#files-count")).to_have_text("Files 1–1 of 1")
    page.get_by_role("button", name="Clear").click()
    expect(page.locator("#files-count")).to_contain_text("Files 1–50 of 6")
    page.get_by_label("Modified since").fill("2999-01-01T00:00")
    page.get_by_role("button", name="Apply").click()
    expect(page.locator("#files-count")).to_have_text("No files match.")

    page.get_by_label("Files from").select_option(label="Device p1/dev-1")
    page.get_by_role("button", name="Clear").click()
    expect(page.locator("#files-count")).to_have_text("Files 1–1 of 1")
    details(page, "device-log.csv")
    expect(page.locator("#details")).to_contain_text("device p1/dev-1")
    expect(page.locator("#details")).to_contain_text("Uploaded via")
    expect(page.locator("#details")).to_contain_text("fixture (assetfiles apply)")
    watch.assert_clean()


def test_previews_image_pdf_csv_and_details(page: Page, console_server: Server) -> None:
    watch = Watch(page)
    ranges: list[str | None] = []
    page.on(
        "request",
        lambda request: ranges.append(request.headers.get("range")) if "/transfer/" in request.url else None,
    )
    sign_in(page, console_server)
    open_asset(page)

    details(page, "nameplate.png")
    image = page.locator(".preview-image")
    expect(image).to_be_visible()
    page.wait_for_function("document.querySelector('.preview-image').naturalWidth > 0")
    screenshot(page, "preview-image-desktop")

    details(page, "manual.pdf")
    expect(page.locator(".pdf-pages")).to_have_text("Page 1 of 1")
    # The canvas holds a rendered page, not a blank one: some pixels are dark (the text).
    dark = page.evaluate(
        """() => { const c = document.querySelector('.preview-pdf');
                   const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                   let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i] < 100) n++; return n; }"""
    )
    assert dark > 50
    screenshot(page, "preview-pdf-desktop")

    ranges.clear()
    details(page, "log.csv")
    table = page.locator(".preview-csv")
    expect(table.locator("th")).to_have_text(["time", "temperature"])
    expect(table.locator("tbody tr")).to_have_count(100)
    expect(page.locator("#details")).to_contain_text("The first 100 rows of")
    # The preview read the first 64 KiB with one Range request, not the whole file.
    assert "bytes=0-65535" in ranges, ranges
    screenshot(page, "preview-csv-desktop")

    details(page, "firmware.bin")
    expect(page.locator(".no-preview")).to_contain_text("No preview for application/octet-stream")
    expect(page.locator(".enos-uri")).to_have_text(_enos_uri(console_server, "firmware.bin"))
    page.get_by_role("button", name="Show sha256").click()
    expect(page.locator("#details .sha256")).to_have_text(
        hashlib.sha256(_firmware(console_server)).hexdigest()
    )
    watch.assert_clean()


def _firmware(server: Server) -> bytes:
    return server.files["files/firmware.bin"]


def _enos_uri(server: Server, name: str) -> str:
    listing = api(
        server,
        "query($f: ContentFilters) { assetContents(filters: $f) { assetContents { enos { fileUri } } } }",
        {"f": {"association": {"type": "asset", "id": "a-boiler"}, "name": name}},
    )
    uri: str = listing["assetContents"]["assetContents"][0]["enos"]["fileUri"]
    return uri


def test_upload_tag_download_delete(page: Page, console_server: Server, tmp_path: Path) -> None:
    watch = Watch(page)
    small = tmp_path / "notes from site.txt"
    small.write_bytes(b"checked the valve\n")
    large = tmp_path / "capture.bin"
    with large.open("wb") as out:  # 52 MiB of noise: the streamed (incremental) hashing path
        rng = random.Random(3)
        for _ in range(52):
            out.write(rng.randbytes(1024 * 1024))
    expected = {
        small.name: hashlib.sha256(small.read_bytes()).hexdigest(),
        large.name: hashlib.sha256(large.read_bytes()).hexdigest(),
    }

    sign_in(page, console_server)
    open_asset(page)
    before = file_count(page)
    page.get_by_label("Tags for these files (name=value, comma-separated)").fill("kind=upload, site=b")
    page.locator("#file-picker").set_input_files([str(small), str(large)])
    uploads = page.locator("#upload-list li")
    expect(uploads).to_have_count(2)
    for index, name in enumerate((small.name, large.name)):
        expect(uploads.nth(index)).to_contain_text(f"uploaded, sha256 {expected[name]}", timeout=120_000)
    screenshot(page, "upload-desktop")
    expect(page.locator("#files-count")).to_contain_text(f"of {before + 2}")

    listed = api(
        console_server,
        """query($f: ContentFilters) { assetContents(filters: $f) {
             assetContents { id name sha256 length uploadedVia tags { name value } } } }""",
        {
            "f": {
                "association": {"type": "asset", "id": "a-boiler"},
                "tags": [{"name": "kind", "value": "upload"}],
            }
        },
    )["assetContents"]["assetContents"]
    assert {item["name"]: item["sha256"] for item in listed} == expected
    assert all({"name": "site", "value": "b"} in item["tags"] for item in listed)
    assert {item["uploadedVia"] for item in listed} == {"tus"}

    # Tags: replace them through the dialog.
    page.get_by_role("button", name=f"Edit tags of {small.name}").first.click()
    dialog = page.locator("#edit-tags")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Remove tag 2").click()
    dialog.get_by_label("Tag 1 value").fill("inspection")
    dialog.get_by_role("button", name="Save tags").click()
    expect(dialog).to_be_hidden()
    row = page.locator("#files tbody tr", has_text=small.name)
    expect(row.locator(".tags li")).to_have_text(["kind=inspection"])

    # Download through the signed URL: the same bytes.
    with page.expect_download() as download_info:
        row.get_by_role("button", name=f"Download {small.name}").click()
    download = download_info.value
    assert download.suggested_filename == small.name
    assert Path(download.path()).read_bytes() == small.read_bytes()

    # Delete: the confirmation names the file; Cancel keeps it, Delete removes it.
    row.get_by_role("button", name=f"Delete {small.name}").click()
    confirm = page.locator("#confirm-delete")
    expect(confirm).to_contain_text(f"Delete {small.name}? This cannot be undone.")
    screenshot(page, "delete-desktop")
    confirm.get_by_role("button", name="Cancel").click()
    expect(page.locator("#files tbody tr", has_text=small.name)).to_have_count(1)
    row.get_by_role("button", name=f"Delete {small.name}").click()
    confirm.get_by_role("button", name=f"Delete {small.name}").click()
    expect(page.locator("#files tbody tr", has_text=small.name)).to_have_count(0)
    remaining = api(
        console_server,
        """query($f: ContentFilters) { assetContents(filters: $f) { totalCount } }""",
        {"f": {"association": {"type": "asset", "id": "a-boiler"}, "name": small.name}},
    )
    assert remaining["assetContents"]["totalCount"] == 0
    watch.assert_clean()


def test_server_errors_are_shown_in_words(page: Page, console_server: Server, tmp_path: Path) -> None:
    sign_in(page, console_server)
    open_asset(page)
    page.get_by_label("Tags for these files (name=value, comma-separated)").fill("kind")
    empty = tmp_path / "x.txt"
    empty.write_bytes(b"x")
    page.locator("#file-picker").set_input_files([str(empty)])
    expect(page.locator("#alert")).to_contain_text('Tags for the upload: tag "kind" needs a value')
    page.get_by_label("Tags for these files (name=value, comma-separated)").fill("")
    page.get_by_label("Modified since").fill("")
    page.get_by_label("Content types (comma-separated)").fill("not a type")
    page.get_by_role("button", name="Apply").click()
    expect(page.locator("#alert")).to_contain_text("contentTypes")


def test_read_only_token_sees_no_write_controls(page: Page, console_server: Server) -> None:
    watch = Watch(page)
    sign_in(page, console_server, RO)
    expect(page.locator("#who")).to_contain_text("viewer · o-console · read only")
    open_asset(page)
    expect(page.locator("#upload")).to_be_hidden()
    expect(page.get_by_role("button", name="Download ").first).to_be_visible()
    assert page.get_by_role("button", name="Delete", exact=False).count() == 0
    assert page.get_by_role("button", name="Edit tags", exact=False).count() == 0
    details(page, "manual.pdf")
    assert page.locator("#details").get_by_role("button", name="Delete", exact=False).count() == 0
    screenshot(page, "read-only-desktop")
    # The server refuses anyway: the read-only token's delete through the same API.
    first = console_server.error(
        'mutation { deleteContent(id: "00000000-0000-0000-0000-000000000000") { id } }', token=RO
    )
    assert first["extensions"]["code"] == "FORBIDDEN"
    watch.assert_clean()


def test_hostile_names_tags_and_svg_run_nothing(page: Page, console_server: Server) -> None:
    watch = Watch(page)
    sign_in(page, console_server)
    open_asset(page)
    details(page, HOSTILE_NAME)
    row = page.locator("#files tbody tr", has_text=HOSTILE_NAME)
    expect(row).to_have_count(1)  # the name is text, not an element
    expect(row.locator(".tags li")).to_have_text([f"note={HOSTILE_TAG}"])
    assert page.locator("#files img").count() == 0
    expect(page.locator(".preview-text")).to_have_text("<script>alert(5)</script> plain text\n")
    row.get_by_role("button", name=f"Delete {HOSTILE_NAME}").click()
    expect(page.locator("#confirm-delete-name")).to_have_text(HOSTILE_NAME)
    page.locator("#confirm-delete").get_by_role("button", name="Cancel").click()

    details(page, "evil.svg")
    svg = page.locator(".preview-image")
    expect(svg).to_be_visible()
    page.wait_for_function("document.querySelector('.preview-image').naturalWidth > 0")
    # Opening the SVG's own URL shows it as an attachment, never as our page's script.
    url = api(
        console_server,
        '{ assetContents(filters: {association: {type: "asset", id: "a-boiler"}, name: "evil.svg"}) '
        "{ assetContents { url } } }",
    )["assetContents"]["assetContents"][0]["url"]
    answer = httpx.get(url)
    assert answer.headers["content-disposition"].startswith("attachment")
    assert answer.headers["x-content-type-options"] == "nosniff"
    page.wait_for_timeout(300)  # an onload would have fired by now
    watch.assert_clean()


def test_sign_out_forgets_and_opt_in_session_persists(browser: Browser, console_server: Server) -> None:
    context = browser.new_context()
    page = context.new_page()
    sign_in(page, console_server, keep=True)
    assert page.evaluate("localStorage.getItem('assetfiles.token')") == RW
    second = context.new_page()  # another tab of the same browser: still signed in
    second.goto(f"{console_server.base_url}/console")
    expect(second.get_by_role("heading", name="Assets")).to_be_visible()
    second.get_by_role("button", name="Sign out").click()
    expect(second.get_by_role("heading", name="Sign in")).to_be_visible()
    assert second.evaluate("localStorage.getItem('assetfiles.token')") is None
    assert second.evaluate("sessionStorage.getItem('assetfiles.token')") is None
    # Without the opt-in, a new tab starts signed out.
    sign_in(page, console_server)
    third = context.new_page()
    third.goto(f"{console_server.base_url}/console")
    expect(third.get_by_role("heading", name="Sign in")).to_be_visible()
    # A token the server does not know is refused in words, and nothing is stored.
    third.get_by_label("API token").fill("tok-nobody-0123456789")
    third.get_by_role("button", name="Sign in").click()
    expect(third.locator("#alert")).to_contain_text("token")
    assert third.evaluate("sessionStorage.getItem('assetfiles.token')") is None
    context.close()


def test_phone_width_and_labels(browser: Browser, console_server: Server) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = context.new_page()
    watch = Watch(page)
    page.goto(f"{console_server.base_url}/console")
    screenshot(page, "sign-in-phone")
    sign_in(page, console_server)
    screenshot(page, "assets-phone")
    open_asset(page)
    # Nothing wider than the screen: no sideways scrolling of the page.
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    # the first screen shows files, not the filters (folded behind one button)
    first_row = page.locator("#files tbody tr").first.bounding_box()
    assert first_row is not None and first_row["y"] < 844, first_row
    screenshot(page, "files-phone")
    page.get_by_role("button", name="Filters and sorting").click()
    expect(page.get_by_label("Name (* and ? match)")).to_be_visible()
    screenshot(page, "filters-phone")
    details(page, "log.csv")
    expect(page.locator(".preview-csv")).to_be_visible()
    page.locator("#details").scroll_into_view_if_needed()
    screenshot(page, "details-phone")
    # Every form control has a label (or an accessible name).
    unlabeled = page.evaluate(
        """() => [...document.querySelectorAll('input, select, textarea')]
              .filter(e => e.type !== 'hidden' && !(e.labels && e.labels.length))
              .filter(e => !e.getAttribute('aria-label'))
              .map(e => e.id || e.outerHTML)"""
    )
    assert unlabeled == []
    watch.assert_clean()
    context.close()


def test_sign_out_is_hidden_until_signed_in(page: Page, console_server: Server) -> None:
    page.goto(f"{console_server.base_url}/console")
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    expect(page.get_by_role("button", name="Sign out")).to_be_hidden()
    sign_in(page, console_server)
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


@pytest.mark.parametrize("width", [1280, 1024])
def test_with_the_details_open_every_column_stays_reachable(browser: Browser, console_server: Server,
                                                            width: int) -> None:  # fmt: skip
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    sign_in(page, console_server)
    open_asset(page)
    page.locator("#files tbody tr").first.get_by_role("button").first.click()
    expect(page.locator("#details")).to_be_visible()
    screenshot(page, f"details-{width}")
    row = page.locator("#files tbody tr").nth(1)
    for name in ("Download", "Delete"):
        button = row.get_by_role("button", name=name).first
        button.scroll_into_view_if_needed()
        box = button.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width, (name, box)
    expect(row.locator(".tags")).to_be_visible()
    modified = row.locator("time").bounding_box()
    size = row.locator("td.num").bounding_box()
    assert modified is not None and size is not None
    assert modified["height"] <= size["height"] * 1.5, (modified, size)  # one line, not three
    context.close()


def test_a_devices_files_offer_no_upload(page: Page, console_server: Server) -> None:
    sign_in(page, console_server)
    open_asset(page)
    expect(page.get_by_role("heading", name="Upload files to this asset")).to_be_visible()
    page.get_by_label("Files from").select_option(index=1)
    expect(page.locator("#files-count")).not_to_contain_text("Files 1–50")
    expect(page.get_by_role("heading", name="Upload files to this asset")).to_be_hidden()
    page.get_by_label("Files from").select_option(index=0)
    expect(page.get_by_role("heading", name="Upload files to this asset")).to_be_visible()


def test_a_bad_filter_leaves_no_old_rows_under_its_error(page: Page, console_server: Server) -> None:
    sign_in(page, console_server)
    open_asset(page)
    expect(page.locator("#files tbody tr")).to_have_count(50)
    page.get_by_label("Content types (comma-separated)").fill("not a type!")
    page.get_by_role("button", name="Apply").click()
    expect(page.locator("#alert")).to_be_visible()
    expect(page.locator("#files tbody tr")).to_have_count(0)
    expect(page.locator("#files-count")).to_contain_text("could not be applied")
    screenshot(page, "bad-filter")


def _noise(path: Path, mib: int, seed: int) -> str:
    rng = random.Random(seed)
    digest = hashlib.sha256()
    with path.open("wb") as out:
        for _ in range(mib):
            block = rng.randbytes(1024 * 1024)
            out.write(block)
            digest.update(block)
    return digest.hexdigest()


def _stored(server: Server, name: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = api(
        server,
        "query($f: ContentFilters) { assetContents(filters: $f) { assetContents "
        "{ id sha256 uploadedVia } } }",
        {"f": {"association": {"type": "asset", "id": "a-boiler"}, "name": name}},
    )["assetContents"]["assetContents"]
    return found


def test_an_upload_survives_dropped_connections(
    browser: Browser, console_server: Server, tmp_path: Path
) -> None:
    """60 MiB through a proxy that cuts the first connections 20 MiB in: tus-js-client asks the
    server where it stands and sends the rest; the page's sha256 is Python's."""
    clip = tmp_path / "dropped.bin"
    expected = _noise(clip, 60, 11)
    port = int(console_server.base_url.rsplit(":", 1)[1])
    with CutProxy(port, cut_after=20 * 1024 * 1024, cuts=2) as proxy:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        watch = Watch(page)
        proxied = Server(proxy.base_url, console_server.data_dir, console_server.background)
        sign_in(page, proxied)
        open_asset(page)
        page.locator("#file-picker").set_input_files(str(clip))
        row = page.locator("#upload-list li").last
        expect(row).to_contain_text(f"uploaded, sha256 {expected}", timeout=180_000)
        assert proxy.cut == 2
        assert proxy.sent < 60 * 1024 * 1024 + 2 * 8 * 1024 * 1024 + 1024 * 1024  # at most a chunk per cut
        context.close()
    (stored,) = _stored(console_server, clip.name)
    assert stored["sha256"] == expected and stored["uploadedVia"] == "tus"
    watch.errors = [e for e in watch.errors if "net::ERR" not in e and "Failed to load resource" not in e]
    watch.assert_clean()


def test_an_upload_resumes_after_a_reload(browser: Browser, console_server: Server, tmp_path: Path) -> None:
    """Halfway through, the page reloads; choosing the same file again sends only the rest."""
    clip = tmp_path / "reloaded.bin"
    expected = _noise(clip, 60, 12)
    port = int(console_server.base_url.rsplit(":", 1)[1])
    with CutProxy(port, rate=12 * 1024 * 1024) as proxy:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        proxied = Server(proxy.base_url, console_server.data_dir, console_server.background)
        sign_in(page, proxied, keep=True)
        open_asset(page)
        page.locator("#file-picker").set_input_files(str(clip))
        bar = page.locator("#upload-list li progress").last
        page.wait_for_function(
            "(bar) => bar.value >= 20 * 1024 * 1024", arg=bar.element_handle(), timeout=120_000
        )
        page.reload()  # the page and its upload are gone; the token was kept
        expect(page.get_by_role("heading", name="Boiler 3")).to_be_visible()
        sent_before = proxy.sent
        page.locator("#file-picker").set_input_files(str(clip))
        row = page.locator("#upload-list li").last
        expect(row).to_contain_text(f"uploaded, sha256 {expected}", timeout=180_000)
        resent = proxy.sent - sent_before
        context.close()
    assert resent < 50 * 1024 * 1024, resent  # the rest, not the whole 60 MiB again
    (stored,) = _stored(console_server, clip.name)
    assert stored["sha256"] == expected and stored["uploadedVia"] == "tus"
