#!/usr/bin/env bash
# Refresh the console's vendored JavaScript from the npm registry, at the pinned versions below.
# The console needs no build step: these files are served as they are published (ES modules).
# Run from anywhere; needs npm and tar. Review the diff before committing a new version.
set -euo pipefail

NOBLE_HASHES=2.4.0   # @noble/hashes: incremental SHA-256 for files too large to hash in one call
PDFJS=6.5.438        # pdfjs-dist: PDF previews (first pages, fetched with Range requests)
TUS_JS_CLIENT=4.3.1  # tus-js-client: resumable uploads to /files/ (its browser bundle sets window.tus)

here="$(cd "$(dirname "$0")" && pwd)"
vendor="$here/static/vendor"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

fetch() {  # package version -> unpacked directory
    (cd "$work" && npm pack --silent "$1@$2" >/dev/null)
    local tarball
    tarball="$(ls "$work"/*.tgz)"
    mkdir -p "$work/$3"
    tar xzf "$tarball" -C "$work/$3" --strip-components=1
    rm "$tarball"
}

fetch @noble/hashes "$NOBLE_HASHES" noble
rm -rf "$vendor/noble-hashes" && mkdir -p "$vendor/noble-hashes"
cp "$work"/noble/{sha2.js,_md.js,_u64.js,utils.js,LICENSE} "$vendor/noble-hashes/"
echo "@noble/hashes $NOBLE_HASHES (npm registry)" > "$vendor/noble-hashes/VERSION"

fetch pdfjs-dist "$PDFJS" pdfjs
rm -rf "$vendor/pdfjs" && mkdir -p "$vendor/pdfjs"
cp "$work"/pdfjs/build/{pdf.min.mjs,pdf.worker.min.mjs} "$work"/pdfjs/LICENSE "$vendor/pdfjs/"
echo "pdfjs-dist $PDFJS (npm registry)" > "$vendor/pdfjs/VERSION"

fetch tus-js-client "$TUS_JS_CLIENT" tus
rm -rf "$vendor/tus-js-client" && mkdir -p "$vendor/tus-js-client"
cp "$work"/tus/dist/tus.min.js "$work"/tus/LICENSE "$vendor/tus-js-client/"
echo "tus-js-client $TUS_JS_CLIENT (npm registry)" > "$vendor/tus-js-client/VERSION"

echo "vendored @noble/hashes $NOBLE_HASHES, pdfjs-dist $PDFJS and tus-js-client $TUS_JS_CLIENT into $vendor"
