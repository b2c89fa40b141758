"""``python -m assetfiles``: the same as the ``assetfiles`` command."""

from assetfiles.cli import main

main()
