#!/usr/bin/env bash
# s3_sync_attrs.sh - on a write_back = sync cloud, attributes set on a file
# that is open with writes not uploaded yet go up with the upload at its
# close, not in requests of their own (GNU tar sets a file's times, owner
# and mode on its descriptor before it closes it), on s3rver behind the
# logging proxy:
#   - open, write, futimens, fchown, fchmod, close: the object is PUT once
#     (at close: a new file is not made on the cloud at create), not five
#     times, and the server's object has the mode, owner and times set;
#   - a fresh mount with an empty cache shows them;
#   - a chmod on a file open with nothing unsent, and one after the close,
#     still reach the server before they return;
#   - tar -x into the cloud: each file PUT once, its mode and mtime right;
#   - a new file reaches the server at its close, not before: an empty
#     one closed without writes too (at its release, right after), one renamed while open under its new
#     name only, one renamed over a file the server holds replacing it, a
#     user xattr set on it while open with it; unlinked while open: never.
. "$(dirname "$0")/lib.sh"

MNT="$TEST_TMP/mnt"
CONF="$TEST_TMP/skyfs.conf"
start_s3rver_behind logging attrs || die "no s3rver"
write_s3_config "$CONF" "http://127.0.0.1:$PROXY_PORT" attrs "write_back = sync"
mount_skyfs "$CONF" "$MNT" || die "cannot mount"
D="$MNT/s3"

puts_of() { requests_since "$1" | grep -c "^PUT /attrs/$2\( \|$\)" || true; }

# 1. attributes on an open file with unsent writes
m=$(requests_mark)
cat >"$TEST_TMP/tar_like.py" <<'EOF'
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
os.write(fd, b"tar writes this\n")
os.utime(fd, ns=(1600000000000000000, 1500000000000000000))
os.fchown(fd, 1234, 5678)
os.fchmod(fd, 0o640)
os.close(fd)
EOF
check "a file written, its times, owner and mode set on its descriptor, then closed" \
    "$PYTHON" "$TEST_TMP/tar_like.py" "$D/one"
check_eq "the object was PUT once: at close, not at create" 1 "$(puts_of "$m" one)"
check_eq "the server's object has the mode (S_IFREG|0640)" 33184 "$(bucket_header one x-amz-meta-mode)"
check_eq "and the owner" 1234 "$(bucket_header one x-amz-meta-uid)"
check_eq "and the group" 5678 "$(bucket_header one x-amz-meta-gid)"
check_eq "and the mtime" 1500000000 "$(bucket_header one x-amz-meta-mtime | cut -d. -f1)"
check_eq "and the bytes" "tar writes this" "$(bucket_get one)"
check_eq "the mount shows them" "640 1234 5678 1500000000" "$(stat -c '%a %u %g %Y' "$D/one")"

# 2. a chmod with nothing unsent goes up at once
cat >"$TEST_TMP/chmod_open.py" <<'EOF'
import os, subprocess, sys
fd = os.open(sys.argv[1], os.O_RDWR)
os.fchmod(fd, 0o600)
out = subprocess.run(["curl", "-sfI", "--aws-sigv4", "aws:amz:us-east-1:s3", "--user",
                      "S3RVER:S3RVER", "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD",
                      sys.argv[2]], capture_output=True, text=True).stdout.lower()
os.close(fd)
sys.exit(0 if "x-amz-meta-mode: 33152" in out else 1)
EOF
check "a chmod on a file open with nothing unsent reaches the server before close" \
    "$PYTHON" "$TEST_TMP/chmod_open.py" "$D/one" "$BUCKET_URL/one"
chmod 0604 "$D/one"
check_eq "a chmod after the close reaches the server at once" 33156 \
    "$(bucket_header one x-amz-meta-mode)"

# 3. tar -x
mkdir -p "$TEST_TMP/src/sub"
printf 'alpha\n' >"$TEST_TMP/src/a.txt"
printf 'beta\n' >"$TEST_TMP/src/sub/b.txt"
chmod 0751 "$TEST_TMP/src/a.txt"
touch -d @1400000000 "$TEST_TMP/src/a.txt" "$TEST_TMP/src/sub/b.txt"
tar -cf "$TEST_TMP/t.tar" -C "$TEST_TMP/src" a.txt sub/b.txt
mkdir "$D/x"
m=$(requests_mark)
check "tar -x into the cloud" tar -xf "$TEST_TMP/t.tar" -C "$D/x"
check_eq "a.txt was PUT once" 1 "$(puts_of "$m" x/a.txt)"
check_eq "sub/b.txt was PUT once" 1 "$(puts_of "$m" x/sub/b.txt)"
check_eq "a.txt keeps its mode on the server" 33257 "$(bucket_header x/a.txt x-amz-meta-mode)"
check_eq "and its mtime" 1400000000 "$(bucket_header x/a.txt x-amz-meta-mtime | cut -d. -f1)"
check_eq "sub/b.txt keeps its mtime" 1400000000 \
    "$(bucket_header x/sub/b.txt x-amz-meta-mtime | cut -d. -f1)"

# 4. a new file goes up at its close
cat >"$TEST_TMP/new_files.py" <<'EOF'
import os, subprocess, sys
d, url = sys.argv[1], sys.argv[2]
def on_server(key):
    return subprocess.run(["curl", "-sfI", "--aws-sigv4", "aws:amz:us-east-1:s3", "--user",
                           "S3RVER:S3RVER", "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD",
                           url + "/" + key], capture_output=True).returncode == 0
def new(name, data):
    fd = os.open(d + "/new/" + name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    os.write(fd, data)
    return fd
bad = []
fd = new("moved.tmp", b"moved while open\n")
os.rename(d + "/new/moved.tmp", d + "/new/moved.txt")
os.close(fd)
if on_server("new/moved.tmp"): bad.append("moved.tmp reached the server")
if not on_server("new/moved.txt"): bad.append("moved.txt not on the server after its close")
fd = new("over.tmp", b"the new content\n")
os.rename(d + "/new/over.tmp", d + "/new/over.txt")
os.close(fd)
fd = new("x.txt", b"with an xattr\n")
os.setxattr(d + "/new/x.txt", "user.color", b"blue")
os.close(fd)
fd = new("gone.txt", b"removed while open\n")
os.unlink(d + "/new/gone.txt")
os.close(fd)
if on_server("new/gone.txt"): bad.append("gone.txt reached the server")
print("\n".join(bad))
sys.exit(1 if bad else 0)
EOF
# (a process that forks while the file is open would make the kernel
# flush it at the child's exec: the holder waits for the shell instead)
cat >"$TEST_TMP/hold_open.py" <<'EOF'
import os, sys, time
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
os.write(fd, b"being written\n")
open(sys.argv[2] + ".ready", "w").close()
for _ in range(600):
    if os.path.exists(sys.argv[2]):
        break
    time.sleep(0.05)
os.close(fd)
EOF
mkdir "$D/new"
"$PYTHON" "$TEST_TMP/hold_open.py" "$D/new/open.txt" "$TEST_TMP/go" </dev/null &
holder=$!
check "a new file is written and held open" wait_until 10 test -e "$TEST_TMP/go.ready"
check "it is not on the server while open" bucket_lacks new/open.txt
check_eq "the mount shows its size" 14 "$(stat -c %s "$D/new/open.txt")"
check_eq "and lists it" "open.txt" "$(ls "$D/new")"
touch "$TEST_TMP/go"
wait "$holder"
check "it is on the server once closed" bucket_has new/open.txt
printf 'the old content\n' >"$D/new/over.txt"
check_eq "over.txt is on the server" "the old content" "$(bucket_get new/over.txt)"
m=$(requests_mark)
check "new files: on the server at their close, not before" \
    "$PYTHON" "$TEST_TMP/new_files.py" "$D" "$BUCKET_URL"
check_eq "open.txt has its bytes on the server" "being written" "$(bucket_get new/open.txt)"
check_eq "moved.txt has its bytes on the server" "moved while open" "$(bucket_get new/moved.txt)"
check_eq "over.txt has the new bytes on the server" "the new content" "$(bucket_get new/over.txt)"
check_eq "x.txt has its user xattr on the server" "blue" \
    "$(bucket_header new/x.txt x-amz-meta-color)"
check_eq "nothing was sent for gone.txt" "" "$(requests_since "$m" | grep 'new/gone.txt')"
touch "$D/new/empty"
# (its upload is at the release, which the kernel sends right after the close)
check "an empty file closed without writes reaches the server" \
    wait_until 10 bucket_has new/empty
check_eq "empty" 0 "$(bucket_header new/empty content-length)"
check_eq "the folder lists them" "empty moved.txt open.txt over.txt x.txt" \
    "$(ls "$D/new" | tr '\n' ' ' | sed 's/ $//')"
unmount_skyfs "$MNT"

# 4. a fresh mount with an empty cache
rm -rf "$TEST_TMP/cache"
mkdir -p "$TEST_TMP/cache"
mount_skyfs "$CONF" "$MNT" || die "cannot mount again"
check_eq "a fresh mount shows one's mode, owner and mtime" "604 1234 5678 1500000000" \
    "$(stat -c '%a %u %g %Y' "$D/one")"
check_eq "and a.txt's mode and mtime" "751 1400000000" "$(stat -c '%a %Y' "$D/x/a.txt")"
check_eq "and a.txt's bytes" alpha "$(cat "$D/x/a.txt")"
unmount_skyfs "$MNT"
