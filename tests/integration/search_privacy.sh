#!/usr/bin/env bash
# search_privacy.sh - on a root mount shared with every user (allow_other),
# search shows each user only what that user may see, and queries are
# private and expire:
#   - .skyfs/search lists for a second user (skyfs-t2) no file of a 0700
#     folder of root's (it used to show salary-*.xlsx to everyone);
#     root sees it;
#   - the query directories root made are not listed to skyfs-t2, and one
#     unused for the expiry time (SKYFS_SEARCH_EXPIRY=2 s here) is gone;
#   - `skyfs search` run by skyfs-t2: a clear message when the index is
#     private (the default 0700 cache directory), and filtered hits when
#     the index can be read.
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" -eq 0 ] || die "this test needs root (it mounts for all users and runs as another)"
# shellcheck source=users_lib.sh
. "$(dirname "$0")/users_lib.sh"
USER2=skyfs-t2
test_user "$USER2" >/dev/null || die "cannot create user $USER2"
as2() { as_user "$USER2" "$@"; }
chmod 1777 "$LOGS"              # sanitizer reports of $USER2's processes land there

chmod 755 "$TEST_TMP"           # other users must reach the mount and the config
CONF="$TEST_TMP/skyfs.conf"
MNT="$TEST_TMP/mnt"
DOCS="$TEST_TMP/data/docs"
CACHE="$TEST_TMP/cache"
write_local_config "$CONF" "$CACHE" docs="$DOCS"
chmod 755 "$TEST_TMP/data"
chmod 644 "$CONF"
mkdir -p "$DOCS/hr/private" "$DOCS/public"
echo 1 >"$DOCS/hr/private/salary-2024.xlsx"
echo 2 >"$DOCS/public/report.xlsx"
echo 3 >"$DOCS/hr/budget.xlsx"
chmod 755 "$DOCS" "$DOCS/public" "$DOCS/hr"
chmod 700 "$DOCS/hr/private"
chmod 600 "$DOCS/hr/private/salary-2024.xlsx"
chmod 711 "$DOCS/hr"            # searchable, not listable: budget.xlsx stays hidden
chmod 700 "$CACHE"              # as skyfs makes it when it creates it

export SKYFS_SEARCH_EXPIRY=2
mount_skyfs "$CONF" "$MNT" || die "cannot mount"
ls -laR "$MNT/docs" >/dev/null  # fill the index

names() { # names DIR: the sorted names in a search directory
    ls -1 "$1" 2>&1 | sort | tr '\n' ' '
}
check_eq "root sees every hit" "budget.xlsx report.xlsx salary-2024.xlsx " \
    "$(names "$MNT/.skyfs/search/*.xlsx")"
check_eq "$USER2 sees only the hit it may reach" "report.xlsx " \
    "$(as2 ls -1 "$MNT/.skyfs/search/*.xlsx" 2>&1 | sort | tr '\n' ' ')"
check_eq "$USER2 cannot reach the 0700 file through its own path either" \
    "stat: cannot statx '$MNT/docs/hr/private/salary-2024.xlsx': Permission denied" \
    "$(as2 stat "$MNT/docs/hr/private/salary-2024.xlsx" 2>&1)"
check_eq "$USER2 with criteria sees the same" "report.xlsx " \
    "$(as2 ls -1 "$MNT/.skyfs/search/iname=*.xlsx&type=f" 2>&1 | sort | tr '\n' ' ')"

# ---- queries are private
names "$MNT/.skyfs/search/name=salary*" >/dev/null
check_eq "root lists its own queries" "*.xlsx name=salary* " "$(names "$MNT/.skyfs/search")"
check_eq "$USER2 lists only its own queries" "*.xlsx iname=*.xlsx&type=f " \
    "$(as2 ls -1 "$MNT/.skyfs/search" 2>&1 | sort | tr '\n' ' ')"
check_eq "a query directory is its owner's" "$USER2 500" \
    "$(as2 stat -c '%U %a' "$MNT/.skyfs/search/*.xlsx" 2>&1)"

# ---- queries expire when unused
gone() { [ -z "$(ls -1 "$MNT/.skyfs/search")" ]; }
check "root's unused queries are forgotten after the expiry time" wait_until 20 gone

# ---- skyfs search as another user
err=$(as2 "$SKYFS" search -c "$CONF" '*.xlsx' 2>&1 >/dev/null)
rc=$?
check_eq "skyfs search by $USER2 on a private index fails" 1 "$rc"
check_eq "with one clear line" \
    "skyfs: cannot read the metadata index $CACHE/meta.db: it belongs to the user who mounted (uid 0); search through the mount instead (ls MOUNTPOINT/.skyfs/search/QUERY), or run skyfs search as that user" \
    "$err"
chmod 755 "$CACHE"               # a shared index: readable by all
chmod 644 "$CACHE"/meta.db* "$CACHE"/mountpoint
check_eq "skyfs search by $USER2 on a readable index shows what it may see" \
    "$MNT/docs/public/report.xlsx" "$(as2 "$SKYFS" search -c "$CONF" '*.xlsx' 2>&1)"
check_eq "skyfs search by root shows every hit" 3 \
    "$("$SKYFS" search -c "$CONF" '*.xlsx' | wc -l)"
check_eq "--limit counts the hits shown to $USER2" "$MNT/docs/public/report.xlsx" \
    "$(as2 "$SKYFS" search -c "$CONF" --limit 1 '*.xlsx' 2>&1)"
unmount_skyfs "$MNT"
