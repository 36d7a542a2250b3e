# relist_lib.sh - what s3_relist.sh and azure_relist.sh share: twelve
# files in folder $D of the mount, their expected attributes, and the
# requests logged since a mark ($REQUESTS, one "METHOD PATH" a line, by
# listing_proxy.py).  Sourced after lib.sh, with D and REQUESTS set.
# shellcheck shell=bash
NAMES="f01 f02 f03 f04 f05 f06 f07 f08 f09 f10 f11 f12"
want=$(date -d '2001-02-03 04:05:06' +%s)

# make_names: the folder and its 12 files (mtime of 2001, f05 mode 600),
# then one listing of it; two checks
make_names() {
    check "make 12 files with their mtime and mode" sh -c "mkdir '$D' && cd '$D' &&
        for f in $NAMES; do echo \"file \$f\" >\$f; done &&
        touch -d '2001-02-03 04:05:06' $NAMES && chmod 600 f05"
    check "the folder is listed" ls -l "$D"
}

# attrs: "NAME MODE MTIME" of every name, by one lstat each
attrs() { (cd "$D" && for f in $NAMES; do stat -c '%n %a %Y' "$f"; done) 2>&1; }
# expected NAME MODE MTIME: attrs with NAME's line replaced
expected() {
    for f in $NAMES; do
        if [ "$f" = "$1" ]; then echo "$1 $2 $3"
        elif [ "$f" = f05 ]; then echo "f05 600 $want"
        else echo "$f 644 $want"; fi
    done
}
heads() { requests_since "$1" | grep -c '^HEAD '; }
