"""HTTP faces: they parse requests and render answers; the rules are in ``assetfiles.service``."""
