"""The app tier: the ASGI app in process (tests/inprocess.py), seeded with the suite's world.

Its ``server`` fixture stands in for the root conftest's subprocess server, with the same
interface, so a test moves between the tiers without changing.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import MAX_UPLOAD, world_document, world_files
from tests.helpers import seed
from tests.inprocess import InProcessServer


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessServer]:
    root = tmp_path_factory.mktemp("world-app")
    files = world_files()
    data_dir = seed(root, world_document(), files)
    running = InProcessServer(data_dir, {"ASSETFILES_MAX_UPLOAD_BYTES": str(MAX_UPLOAD)})
    running.files = files
    yield running
    running.stop()
