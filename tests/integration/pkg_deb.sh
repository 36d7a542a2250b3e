#!/usr/bin/env bash
# pkg_deb.sh - the Debian package, built once and installed for real.
#
# As root (it fails otherwise): `make deb` (dpkg-buildpackage, debhelper,
# lintian with no error) builds build/deb/skyfs_VERSION_ARCH.deb once;
# `dpkg -i` installs it; then:
#   - the package's version is lib/version.h's, its Depends fuse3 and the
#     libraries (shlibs), /usr/bin/skyfs runs and /sbin/mount.skyfs is it;
#   - an fstab line (a test fstab, never /etc/fstab) mounts with
#     `mount MOUNTPOINT` through /sbin/mount.skyfs, and umount unmounts
#     (the daemon then ends);
#   - `man -w` finds the three pages, each renders without warnings;
#   - `systemd-analyze verify` accepts both units, with an instance;
#   - the installed completion loads in bash and completes a command;
#   - /etc/skyfs/skyfs.conf.example passes `skyfs config check`;
# and at the end `dpkg --purge` removes it all, leaving the machine as
# before.  /sbin/mount.skyfs is shared with mount_options.sh: both hold
# /tmp/skyfs-mount-helper.lock while they change it.
# run.sh: alone (dpkg -i and --purge of the package change the whole machine)
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" -eq 0 ] || die "pkg_deb.sh installs a package: run it as root"
for tool in dpkg-buildpackage dh lintian man systemd-analyze; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is missing (make deps installs it)"
done
[ -r /usr/share/bash-completion/bash_completion ] ||
    die "bash-completion is missing (make deps installs it)"

exec 9>/tmp/skyfs-mount-helper.lock
flock -w 600 9 || die "another test holds /tmp/skyfs-mount-helper.lock"
if dpkg-query -W -f='${Status}' skyfs 2>/dev/null | grep -q 'install ok installed'; then
    die "a skyfs package is installed already; remove it (dpkg -r skyfs) before this test"
fi
for f in /usr/bin/skyfs /sbin/mount.skyfs; do
    [ -e "$f" ] || [ -L "$f" ] && die "$f exists (make install?); this test would replace it"
done

VERSION=$(sed -n 's/^#define SKYFS_VERSION "\([^"]*\)".*/\1/p' "$SKY_ROOT/lib/version.h")
ARCH=$(dpkg --print-architecture)
DEB="$BUILD/deb/skyfs_${VERSION}_$ARCH.deb"

# --- one build
check "make deb builds the package, lintian finds no error" \
    env DEB_OUT="$BUILD/deb" make -C "$SKY_ROOT" deb
[ -f "$DEB" ] || die "make deb left no $DEB"
check "lintian reports no error" eval '! grep -q "^E:" "$BUILD/deb/lintian.log"'
check_eq "the package's version is lib/version.h's" "$VERSION" \
    "$(dpkg-deb -f "$DEB" Version)"
depends=$(dpkg-deb -f "$DEB" Depends)
for dep in fuse3 libfuse3-3 libcurl4 libsqlite3-0 libssl3 libxxhash0 libexpat1 libjson-c5; do
    check "the package depends on $dep" eval 'echo "$depends" | grep -q "\b$dep\b"'
done

# --- install; whatever happens, purge at the end
purge() { dpkg --purge skyfs >"$LOGS/purge.out" 2>&1; }
trap 'rc=$?; purge; (exit $rc); _sky_exit' EXIT
check "dpkg -i installs the package" dpkg -i "$DEB"
check "dpkg knows skyfs as installed" \
    eval 'dpkg-query -W -f="\${Status}" skyfs | grep -q "install ok installed"'
check_eq "/usr/bin/skyfs runs" "skyfs $VERSION" "$(/usr/bin/skyfs --version 2>&1)"
check_eq "/sbin/mount.skyfs is /usr/bin/skyfs" /usr/bin/skyfs "$(readlink -f /sbin/mount.skyfs)"
for f in /etc/skyfs/skyfs.conf.example /lib/systemd/system/skyfs@.service \
    /usr/lib/systemd/user/skyfs@.service /usr/share/bash-completion/completions/skyfs; do
    check "the package installed $f" test -s "$f"
done

# --- an fstab line, mount MOUNTPOINT, umount
MNT="$TEST_TMP/clouds"
DOCS="$TEST_TMP/docs"
mkdir -p "$MNT" "$DOCS"
echo "from the package" >"$DOCS/hello.txt"
(umask 077 && printf '[cache]\ndir = %s\n\n[docs]\ntype = local\npath = %s\n' \
    "$TEST_TMP/cache" "$DOCS" >"$TEST_TMP/skyfs.conf")
echo "$TEST_TMP/skyfs.conf $MNT skyfs _netdev,nofail,allow_other 0 0" >"$TEST_TMP/fstab"
echo "$MNT" >>"$_SKY_MOUNTS"
check "mount MOUNTPOINT mounts the fstab line (mount --fstab FILE)" \
    mount --fstab "$TEST_TMP/fstab" "$MNT"
check "the fstab entry is mounted, type fuse.skyfs" \
    eval '[ "$(findmnt -n -o FSTYPE "$MNT")" = fuse.skyfs ]'
check "its daemon is the installed /usr/bin/skyfs" \
    eval 'for p in $(daemon_pids "$MNT"); do [ "$(readlink -f /proc/$p/exe)" = /usr/bin/skyfs ] || exit 1; done; [ -n "$(daemon_pids "$MNT")" ]'
check_eq "a file reads through the mount" "from the package" "$(cat "$MNT/docs/hello.txt" 2>&1)"
check "a write through the mount" sh -c "echo new >'$MNT/docs/new.txt'"
check "umount MOUNTPOINT unmounts" umount "$MNT"
check "the daemon ends after the unmount" wait_until 120 eval '[ -z "$(daemon_pids "$MNT")" ]'
check_eq "the write reached the cloud" new "$(cat "$DOCS/new.txt" 2>&1)"

# --- man pages
for page in skyfs 'skyfs.conf' 'mount.skyfs'; do
    check "man -w finds $page" man -w "$page"
done
check_eq "man -w skyfs is the installed page" /usr/share/man/man1/skyfs.1.gz "$(man -w skyfs)"
for f in /usr/share/man/man1/skyfs.1.gz /usr/share/man/man5/skyfs.conf.5.gz \
    /usr/share/man/man8/mount.skyfs.8.gz; do
    check "$f renders without warnings (man --warnings -l)" \
        eval 'LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$f" 2>"$TEST_TMP/warn" >"$TEST_TMP/page" &&
              [ ! -s "$TEST_TMP/warn" ] && grep -q "skyfs $VERSION" "$TEST_TMP/page" ||
              { cat "$TEST_TMP/warn"; false; }'
done

# --- systemd units
check "systemd-analyze verify accepts the system template unit" \
    systemd-analyze verify /lib/systemd/system/skyfs@.service
mkdir -p "$TEST_TMP/units"
cp /lib/systemd/system/skyfs@.service "$TEST_TMP/units/skyfs@srv-clouds.service"
check "systemd-analyze verify accepts an instance (skyfs@srv-clouds)" \
    systemd-analyze verify "$TEST_TMP/units/skyfs@srv-clouds.service"
check "systemd-analyze --user verify accepts the user unit" \
    env XDG_RUNTIME_DIR="$TEST_TMP" systemd-analyze --user verify /usr/lib/systemd/user/skyfs@.service
check_eq "the unit is Type=notify" notify \
    "$(sed -n 's/^Type=//p' /lib/systemd/system/skyfs@.service)"
check "the unit stops with skyfs unmount, which waits for pending uploads" \
    grep -q '^ExecStop=/usr/bin/skyfs unmount --timeout 0 %f$' /lib/systemd/system/skyfs@.service

# --- bash completion as installed
check_eq "the installed completion completes skyfs unm<TAB>" unmount \
    "$(bash -c '. /usr/share/bash-completion/bash_completion
               . /usr/share/bash-completion/completions/skyfs
               COMP_WORDS=(skyfs unm); COMP_CWORD=1; COMP_LINE="skyfs unm"; COMP_POINT=9
               _skyfs skyfs unm skyfs; printf "%s\n" "${COMPREPLY[@]}"' 2>&1)"

# --- the example config
sed "s|^path = /srv/docs|path = $DOCS|" /etc/skyfs/skyfs.conf.example >"$TEST_TMP/example.conf"
chmod 600 "$TEST_TMP/example.conf"
check "skyfs config check accepts /etc/skyfs/skyfs.conf.example (with an existing path)" \
    /usr/bin/skyfs config check -c "$TEST_TMP/example.conf"
# every kind the installed skyfs knows (a new kind needs its example)
for kind in $(/usr/bin/skyfs config keys | awk '$1 !~ /^\[/ && $1 != "cloud" { print $1 }' | sort -u); do
    check "the example has a cloud of type $kind" grep -q "^type = $kind$" /etc/skyfs/skyfs.conf.example
done

# --- removal leaves nothing
check "dpkg --purge removes the package" purge
for f in /usr/bin/skyfs /sbin/mount.skyfs /etc/skyfs/skyfs.conf.example \
    /lib/systemd/system/skyfs@.service /usr/share/man/man1/skyfs.1.gz \
    /usr/share/bash-completion/completions/skyfs; do
    check_fails "$f is gone" test -e "$f"
done
