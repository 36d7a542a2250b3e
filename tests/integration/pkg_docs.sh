#!/usr/bin/env bash
# pkg_docs.sh - the man pages (packaging/man) and README.md say what the
# code accepts, so the three cannot drift apart; the pages render without
# warnings; the bash completion completes from the code's commands.
#
# What the code accepts is read from the code itself:
#   - commands and subcommands: `skyfs help` and `skyfs help COMMAND`;
#   - long options: the getopt tables of tools/*.c;
#   - config keys: `skyfs config keys` (the [cache] and [daemon] tables,
#     the common keys and every registered driver's key table);
#   - mount options: the tables and words of fs/mountopts.c;
#   - metrics: the skyfs_* names in lib/metrics.c and fs/mountmetrics.c.
# Each must appear in the right man page (a cloud type's keys under its
# own ".SS type = TYPE" heading of skyfs.conf(5)) and in README.md.
. "$(dirname "$0")/lib.sh"

MAN="$SKY_ROOT/packaging/man"
README="$SKY_ROOT/README.md"
command -v man >/dev/null 2>&1 || die "man is missing: install man-db (make deps)"

# the page's text with roff's \- as -, \fB \fR \fI \fP removed
plain() { sed -e 's/\\-/-/g' -e 's/\\f[BIRP]//g' -e 's/\\(lq\|\\(rq//g' "$1"; }
plain "$MAN/skyfs.1" >"$TEST_TMP/skyfs.1.txt"
plain "$MAN/skyfs.conf.5" >"$TEST_TMP/skyfs.conf.5.txt"
plain "$MAN/mount.skyfs.8" >"$TEST_TMP/mount.skyfs.8.txt"

# --- every page renders without a warning
for page in skyfs.1 skyfs.conf.5 mount.skyfs.8; do
    check "man --warnings renders $page without a warning" \
        eval 'LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$MAN/$page" 2>"$TEST_TMP/$page.warn" >"$TEST_TMP/$page.out" &&
              [ ! -s "$TEST_TMP/$page.warn" ] && [ -s "$TEST_TMP/$page.out" ] ||
              { cat "$TEST_TMP/$page.warn"; false; }'
done

# --- commands and subcommands
"$SKYFS" help >"$TEST_TMP/help" 2>&1 || die "skyfs help failed"
commands=$(awk '/^commands:/ { on = 1; next } on && /^$/ { exit } on && /^  [a-z]/ { print $1 }' \
    "$TEST_TMP/help")
check "skyfs help lists the commands" [ "$(echo "$commands" | wc -l)" -ge 8 ]
for c in $commands; do
    check "skyfs($c) has a section in skyfs(1)" grep -q "^\.SS \"skyfs $c" "$MAN/skyfs.1"
    check "README names skyfs $c" grep -q "skyfs $c" "$README"
    # subcommands: the plain words of its usage line ("check [-c CONFIG] | keys")
    usage=$("$SKYFS" help "$c" | sed -n 's/^usage: skyfs [a-z]* //p')
    for sub in $(echo "$usage" | tr '|' '\n' | awk '$1 ~ /^[a-z]+$/ { print $1 }'); do
        check "skyfs(1) documents skyfs $c $sub" grep -q "skyfs $c $sub" "$TEST_TMP/skyfs.1.txt"
        check "README documents skyfs $c $sub" grep -q "skyfs $c $sub" "$README"
    done
done
check "skyfs(1) documents skyfs --version" grep -q "skyfs --version" "$TEST_TMP/skyfs.1.txt"

# --- long options of every command
options=$(grep -oh '{ "[a-z0-9-]*", *\(required\|no\)_argument' "$SKY_ROOT"/tools/*.c |
          sed 's/{ "\([^"]*\)".*/\1/' | sort -u)
check "the option tables were found" [ "$(echo "$options" | wc -l)" -ge 20 ]
for o in $options; do
    [ "$o" = help ] && continue     # every command's --help: in the synopsis of help
    check "skyfs(1) documents --$o" grep -q -- "--$o\b" "$TEST_TMP/skyfs.1.txt"
    check "README documents --$o" grep -q -- "--$o\b" "$README"
done

# --- config keys, per section and cloud type
"$SKYFS" config keys >"$TEST_TMP/keys" 2>&1 || die "skyfs config keys failed"
check "skyfs config keys lists keys of [cache], [daemon], every cloud and the types" \
    eval 'grep -q "^\[cache\]" "$TEST_TMP/keys" && grep -q "^\[daemon\]" "$TEST_TMP/keys" &&
          grep -q "^cloud " "$TEST_TMP/keys" && grep -q "^local " "$TEST_TMP/keys"'
# section TEXT START-REGEX: the lines of TEXT from START up to the next
# heading of the same level or above
section() {
    awk -v start="$2" '$0 ~ start { on = 1; print; next }
        on && (/^\.SH/ || (start ~ /^\^\\\.SS/ && /^\.SS/)) { exit }
        on { print }' "$1"
}
while read -r where key _; do
    case "$where" in
        '[cache]') heading='^\.SH \[cache\]' ;;
        '[daemon]') heading='^\.SH \[daemon\]' ;;
        cloud) heading='^\.SH KEYS EVERY CLOUD TAKES' ;;
        *) heading="^\\.SS \"type = $where\"" ;;
    esac
    section "$TEST_TMP/skyfs.conf.5.txt" "$heading" >"$TEST_TMP/section"
    check "skyfs.conf(5) documents $key under $where" \
        grep -Eq "^\.B .*\b$key\b|^\.TP.*\b$key\b" "$TEST_TMP/section"
    check "README documents the key $key ($where)" grep -q "\`$key\`" "$README"
done <"$TEST_TMP/keys"
for type in $(awk '$1 !~ /^\[|^cloud$/ { print $1 }' "$TEST_TMP/keys" | sort -u); do
    check "README has the cloud kind type = $type" grep -q "type = $type" "$README"
done
for type in $(sed -n 's/^\.SS "type = \(.*\)"$/\1/p' "$MAN/skyfs.conf.5"); do
    check "skyfs.conf(5)'s kind $type is one the code knows" \
        grep -q "^$type " "$TEST_TMP/keys"
done

# --- mount options
mopts=$(sed -n '/^static const char \*const \(kernel\|ignored\)_opts/,/NULL/p' \
            "$SKY_ROOT/fs/mountopts.c" | grep -o '"[a-z_]*"' | tr -d '"')
mopts="$mopts ro rw uid gid umask allow_other allow_root nonempty x-* comment"
check "the mount option tables were found" [ "$(echo $mopts | wc -w)" -ge 30 ]
for o in $mopts; do
    check "mount.skyfs(8) documents the mount option $o" \
        grep -qF -- "$o" "$TEST_TMP/mount.skyfs.8.txt"
    check "README documents the mount option $o" grep -qF -- "\`$o" "$README"
done
for o in _netdev nofail x-systemd.automount allow_other; do
    check "mount.skyfs(8) explains $o for fstab" grep -qF -- "$o" "$TEST_TMP/mount.skyfs.8.txt"
done

# --- metrics
metrics=$(grep -oh '"skyfs_[a-z_]*"' "$SKY_ROOT/lib/metrics.c" "$SKY_ROOT/fs/mountmetrics.c" |
          tr -d '"' | sed 's/_\(bucket\|sum\|count\)$//' | sort -u)
check "the metric names were found" [ "$(echo "$metrics" | wc -l)" -ge 15 ]
for m in $metrics; do
    check "skyfs(1) documents the metric $m" grep -q "$m" "$TEST_TMP/skyfs.1.txt"
    check "README documents the metric $m" grep -q "$m" "$README"
done

# --- bash completion, from the source tree
BC=/usr/share/bash-completion/bash_completion
[ -r "$BC" ] || die "bash-completion is missing: install it (make deps)"
# complete WORDS...: what the completion offers for the last word
complete_words() {
    bash -c '. "$1" && . "$2" && shift 2 && COMP_WORDS=("$@") && COMP_CWORD=$(($# - 1)) &&
             COMP_LINE="$*" && COMP_POINT=${#COMP_LINE} &&
             $(complete -p "$1" | sed "s/.*-F \([^ ]*\) .*/\1/") "$1" "${COMP_WORDS[-1]}" "${COMP_WORDS[-2]}" &&
             printf "%s\n" "${COMPREPLY[@]}"' _ "$BC" "$SKY_ROOT/packaging/completion/skyfs" "$@"
}
check "the completion script loads in bash" \
    bash -c '. "$1" && . "$2" && complete -p skyfs && complete -p mount.skyfs' _ "$BC" \
    "$SKY_ROOT/packaging/completion/skyfs"
check_eq "skyfs mo<TAB> completes mount" mount "$(complete_words skyfs mo)"
check_eq "skyfs cache <TAB> offers the subcommands" "evict stats warm" \
    "$(complete_words skyfs cache '' | sort | xargs)"
complete_words skyfs "" >"$TEST_TMP/offered"
for c in $commands; do
    check "the completion offers the command $c" grep -qx "$c" "$TEST_TMP/offered"
done
mkdir -p "$TEST_TMP/comp"
printf '[cache]\ndir = /tmp\n[daemon]\nlog_level = info\n[photos]\ntype = local\npath = /tmp\n[docs]\ntype = local\npath = /tmp\n' \
    >"$TEST_TMP/comp/c.conf"
check_eq "skyfs search -c CONF --cloud <TAB> offers the config's clouds" "docs photos" \
    "$(complete_words skyfs search -c "$TEST_TMP/comp/c.conf" --cloud '' | sort | xargs)"
mkdir -p "$TEST_TMP/comp/mnt-here"
check_eq "skyfs mount -c CONF <path><TAB> completes directories" "$TEST_TMP/comp/mnt-here" \
    "$(complete_words skyfs mount -c "$TEST_TMP/comp/c.conf" "$TEST_TMP/comp/mnt-h")"
