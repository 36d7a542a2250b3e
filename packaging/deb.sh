#!/bin/sh
# deb.sh - `make deb`: builds the skyfs binary package with Debian's own
# tools (dpkg-buildpackage, debhelper) and checks it with lintian.
#
# The package's version is SKYFS_VERSION of lib/version.h, the one place
# it is written: this script writes debian/changelog from it.  The
# sources are copied into build/deb/src/skyfs-VERSION with
# packaging/debian as debian/ (the top-level layout stays as it is), the
# man pages get the version, and the .deb lands in build/deb/ (its path is
# the last line printed).  Fails when lintian reports an error.
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${DEB_OUT:-$ROOT/build/deb}

die() { echo "deb.sh: $*" >&2; exit 1; }

for tool in dpkg-buildpackage dh lintian; do
    command -v "$tool" >/dev/null 2>&1 ||
        die "$tool is missing; install debhelper and lintian (make deps installs them)"
done

VERSION=$(sed -n 's/^#define SKYFS_VERSION "\([^"]*\)".*/\1/p' "$ROOT/lib/version.h")
[ -n "$VERSION" ] || die "no SKYFS_VERSION in lib/version.h"
ARCH=$(dpkg --print-architecture)
SRC="$OUT/src/skyfs-$VERSION"

rm -rf "$OUT/src"
mkdir -p "$SRC"
(cd "$ROOT" && tar cf - Makefile README.md lib cache backends fs tools packaging) |
    (cd "$SRC" && tar xf -)
cp -r "$ROOT/packaging/debian" "$SRC/debian"
mkdir -p "$SRC/debian/man"
for page in "$ROOT"/packaging/man/*; do
    sed "s/@VERSION@/$VERSION/g" "$page" > "$SRC/debian/man/$(basename "$page")"
done

# the changelog's date: the last commit's, so a rebuild of one commit
# makes the same package
EPOCH=$(git -C "$ROOT" log -1 --format=%ct 2>/dev/null || date +%s)
cat > "$SRC/debian/changelog" <<CHANGELOG
skyfs ($VERSION) unstable; urgency=medium

  * skyfs $VERSION (the version of lib/version.h).

 -- skyfs maintainers <maintainers@users.noreply.r-seed-c8e18bae.example>  $(date -u -R -d "@$EPOCH")
CHANGELOG

echo "deb.sh: building skyfs $VERSION ($ARCH) in $SRC"
(cd "$SRC" && SOURCE_DATE_EPOCH=$EPOCH dpkg-buildpackage -b -us -uc -jauto >"$OUT/build.log" 2>&1) ||
    { tail -40 "$OUT/build.log" >&2; die "dpkg-buildpackage failed (log: $OUT/build.log)"; }

DEB="$OUT/skyfs_${VERSION}_$ARCH.deb"
mv "$OUT/src/skyfs_${VERSION}_$ARCH.deb" "$DEB"
echo "deb.sh: lintian $DEB"
lintian --fail-on error --suppress-tags-from-file /dev/null "$DEB" >"$OUT/lintian.log" 2>&1 ||
    { cat "$OUT/lintian.log" >&2; die "lintian reports errors (above)"; }
cat "$OUT/lintian.log"
echo "$DEB"
