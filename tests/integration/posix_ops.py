#!/usr/bin/env python3
"""posix_ops.py - runs a fixed script of POSIX file operations in DIR.

    python3 posix_ops.py DIR [--kind KIND] [--root ROOT]

DIR must exist and be empty.  Every operation prints one line: what was
done and its result ("ok", a value, or the errno name).  Nothing printed
depends on where DIR is, on inode numbers or on times that were not set
explicitly, so running the script on a skyfs mount and on a plain
directory must print the same lines: local_posix.sh diffs the two.

Used by tests/integration/local_posix.sh, s3_posix.sh and azure_posix.sh
(and any test that wants to compare a mount with a plain directory).

KIND (local, s3, azure, gcs) names the cloud kind DIR is on, or will be
compared with: an operation that posix_known_differences.py lists for it
is not done on either side (what follows sees the same state on both)
and prints "label -> known difference: REASON" instead of its result.
The test files check what such an operation does on the cloud kind
(EPERM for link on object stores, say) with checks of their own.

ROOT is a directory whose mode, owner and times the script may change and
restores: a cloud's root directory on a mount, any directory on the plain
side.

Times that were not set explicitly are shown by how an operation moved
them: "a=later m=same c=later" (atime, mtime, ctime of the path after the
operation, against before it).
"""

import errno
import hashlib
import os
import stat
import subprocess
import sys
import time

from posix_known_differences import KNOWN_DIFFERENCES

KIND = None         # the cloud kind compared with (--kind)


def result(label, fn):
    """Run fn(); print 'label -> value' or 'label -> ERRNO'."""
    reason = KNOWN_DIFFERENCES.get(KIND, {}).get(label)
    if reason is not None:
        print(f"{label} -> known difference: {reason}")
        return None
    try:
        value = fn()
    except OSError as e:
        name = errno.errorcode.get(e.errno, str(e.errno))
        print(f"{label} -> {name}")
        return None
    print(f"{label} -> {'ok' if value is None else value}")
    return value


def digest(data):
    return f"{len(data)} bytes sha256:{hashlib.sha256(data).hexdigest()[:16]}"


def read_all(path):
    with open(path, "rb") as f:
        return digest(f.read())


def pwrite(path, data, offset, flags=os.O_WRONLY):
    fd = os.open(path, flags)
    try:
        return os.pwrite(fd, data, offset)
    finally:
        os.close(fd)


def append(path, data):
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        return os.write(fd, data)
    finally:
        os.close(fd)


def create(path, mode=0o644, flags=os.O_WRONLY | os.O_CREAT | os.O_EXCL):
    os.close(os.open(path, flags, mode))


def ftruncate(path, size):
    fd = os.open(path, os.O_RDWR)
    try:
        os.ftruncate(fd, size)
    finally:
        os.close(fd)


def kind(mode):
    for test, name in ((stat.S_ISREG, "file"), (stat.S_ISDIR, "dir"),
                       (stat.S_ISLNK, "symlink"), (stat.S_ISFIFO, "fifo"),
                       (stat.S_ISSOCK, "socket"), (stat.S_ISCHR, "chardev"),
                       (stat.S_ISBLK, "blockdev")):
        if test(mode):
            return name
    return "other"


def describe(path, with_mtime=False, follow=False):
    """The stat fields that must agree between a mount and a plain dir."""
    st = os.stat(path) if follow else os.lstat(path)
    text = f"{kind(st.st_mode)} mode={stat.S_IMODE(st.st_mode):04o}"
    if stat.S_ISREG(st.st_mode):
        text += f" size={st.st_size} nlink={st.st_nlink}"
    if stat.S_ISLNK(st.st_mode):
        text += f" size={st.st_size}"
    if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
        text += f" rdev={os.major(st.st_rdev)}:{os.minor(st.st_rdev)}"
    if with_mtime:
        text += f" mtime_ns={st.st_mtime_ns}"
    return text


def listing(path):
    """Sorted names with their kinds, as readdir + lstat see them."""
    names = sorted(os.listdir(path))
    return " ".join(f"{n}:{kind(os.lstat(os.path.join(path, n)).st_mode)}"
                    for n in names) or "(empty)"


def user_xattrs(path):
    # user.skyfs.* are skyfs's own read-only facts (the etag), not the
    # file's: a plain directory has none of them.
    return " ".join(sorted(a for a in os.listxattr(path)
                           if a.startswith("user.")
                           and not a.startswith("user.skyfs."))) or "(none)"


def files_and_data():
    result("create f1", lambda: create("f1"))
    result("create f1 again O_EXCL", lambda: create("f1"))
    result("stat f1", lambda: describe("f1"))
    result("pwrite f1 @0", lambda: pwrite("f1", b"hello world\n", 0))
    result("pwrite f1 @100 (hole)", lambda: pwrite("f1", b"after a hole", 100))
    result("pwrite f1 @6 (overwrite)", lambda: pwrite("f1", b"WORLD", 6))
    result("read f1", lambda: read_all("f1"))
    result("stat f1", lambda: describe("f1"))
    result("append f1", lambda: append("f1", b"appended\n"))
    result("append f1 again", lambda: append("f1", b"and more\n"))
    result("read f1", lambda: read_all("f1"))
    result("truncate f1 50 (shrink)", lambda: os.truncate("f1", 50))
    result("read f1", lambda: read_all("f1"))
    result("truncate f1 5000 (grow)", lambda: os.truncate("f1", 5000))
    result("read f1", lambda: read_all("f1"))
    result("ftruncate f1 7", lambda: ftruncate("f1", 7))
    result("read f1", lambda: read_all("f1"))
    result("stat f1", lambda: describe("f1"))
    result("create empty", lambda: create("empty"))
    result("read empty", lambda: read_all("empty"))
    result("O_TRUNC rewrite f1", lambda: pwrite(
        "f1", b"rewritten", 0, os.O_WRONLY | os.O_TRUNC))
    result("read f1", lambda: read_all("f1"))
    result("open missing", lambda: read_all("missing"))
    result("open f1 O_DIRECTORY", lambda: os.close(
        os.open("f1", os.O_RDONLY | os.O_DIRECTORY)))


def renames():
    result("rename f1 f2", lambda: os.rename("f1", "f2"))
    result("stat f1", lambda: describe("f1"))
    result("read f2", lambda: read_all("f2"))
    result("create x", lambda: create("x"))
    result("write x", lambda: pwrite("x", b"x content", 0))
    result("create y", lambda: create("y"))
    result("write y", lambda: pwrite("y", b"y has other content", 0))
    result("rename x over y", lambda: os.rename("x", "y"))
    result("stat x", lambda: describe("x"))
    result("read y", lambda: read_all("y"))
    result("rename missing z", lambda: os.rename("missing", "z"))
    result("mkdir d1", lambda: os.mkdir("d1"))
    result("mkdir d1/sub", lambda: os.mkdir("d1/sub"))
    result("create d1/a", lambda: create("d1/a"))
    result("write d1/a", lambda: pwrite("d1/a", b"a" * 3000, 0))
    result("create d1/sub/b", lambda: create("d1/sub/b"))
    result("write d1/sub/b", lambda: pwrite("d1/sub/b", b"deep file", 0))
    result("rename d1 d2", lambda: os.rename("d1", "d2"))
    result("stat d1", lambda: describe("d1"))
    result("list d2", lambda: listing("d2"))
    result("list d2/sub", lambda: listing("d2/sub"))
    result("read d2/a", lambda: read_all("d2/a"))
    result("read d2/sub/b", lambda: read_all("d2/sub/b"))
    result("rename y into d2", lambda: os.rename("y", "d2/y"))
    result("read d2/y", lambda: read_all("d2/y"))
    result("mkdir emptydir", lambda: os.mkdir("emptydir"))
    result("rename file over dir", lambda: os.rename("d2/y", "emptydir"))
    result("rename dir over file", lambda: os.rename("emptydir", "f2"))
    result("rename dir over non-empty dir", lambda: os.rename("emptydir", "d2"))


def directories():
    result("mkdir d2 (exists)", lambda: os.mkdir("d2"))
    result("mkdir f2 (a file)", lambda: os.mkdir("f2"))
    result("mkdir in missing parent", lambda: os.mkdir("nope/sub"))
    result("rmdir emptydir", lambda: os.rmdir("emptydir"))
    result("stat emptydir", lambda: describe("emptydir"))
    result("rmdir d2 (non-empty)", lambda: os.rmdir("d2"))
    result("rmdir missing", lambda: os.rmdir("missing"))
    result("rmdir f2 (a file)", lambda: os.rmdir("f2"))
    result("unlink d2/y", lambda: os.unlink("d2/y"))
    result("unlink d2/y again", lambda: os.unlink("d2/y"))
    result("unlink missing", lambda: os.unlink("missing"))
    result("unlink d2 (a dir)", lambda: os.unlink("d2"))
    result("list d2", lambda: listing("d2"))
    result("unlink d2/a", lambda: os.unlink("d2/a"))
    result("unlink d2/sub/b", lambda: os.unlink("d2/sub/b"))
    result("rmdir d2/sub", lambda: os.rmdir("d2/sub"))
    result("rmdir d2", lambda: os.rmdir("d2"))
    result("stat d2", lambda: describe("d2"))


def symlinks():
    result("symlink ln -> f2", lambda: os.symlink("f2", "ln"))
    result("symlink ln again", lambda: os.symlink("f2", "ln"))
    result("readlink ln", lambda: os.readlink("ln"))
    result("lstat ln", lambda: describe("ln"))
    result("stat ln (follows)", lambda: describe("ln", follow=True))
    result("read via ln", lambda: read_all("ln"))
    result("symlink dangling -> nowhere", lambda: os.symlink("nowhere", "dangling"))
    result("readlink dangling", lambda: os.readlink("dangling"))
    result("read via dangling", lambda: read_all("dangling"))
    result("readlink f2 (not a link)", lambda: os.readlink("f2"))
    result("unlink dangling", lambda: os.unlink("dangling"))


def attributes():
    result("chmod f2 0600", lambda: os.chmod("f2", 0o600))
    result("stat f2", lambda: describe("f2"))
    result("chmod f2 0755", lambda: os.chmod("f2", 0o755))
    result("stat f2", lambda: describe("f2"))
    result("chmod missing", lambda: os.chmod("missing", 0o644))
    result("mkdir modes", lambda: os.mkdir("modes", 0o750))
    result("stat modes", lambda: describe("modes"))
    result("chmod modes 0700", lambda: os.chmod("modes", 0o700))
    result("stat modes", lambda: describe("modes"))
    result("utime f2 (whole seconds)",
           lambda: os.utime("f2", ns=(1_000_000_000_000_000_000,
                                      1_234_567_890_000_000_000)))
    result("stat f2", lambda: describe("f2", with_mtime=True))
    result("utime f2 (nanoseconds)",
           lambda: os.utime("f2", ns=(1_000_000_000_000_000_000,
                                      1_300_000_000_123_456_789)))
    result("stat f2", lambda: describe("f2", with_mtime=True))
    result("utime modes", lambda: os.utime("modes", ns=(1_000_000_000_000_000_000,
                                                        1_111_111_111_000_000_000)))
    result("stat modes", lambda: describe("modes", with_mtime=True))
    result("utime missing", lambda: os.utime("missing", ns=(0, 0)))
    result("write f2 after utime", lambda: pwrite("f2", b"new", 0))
    result("read f2", lambda: read_all("f2"))


def xattrs():
    result("listxattr f2", lambda: user_xattrs("f2"))
    result("setxattr user.color", lambda: os.setxattr("f2", "user.color", b"blue"))
    result("getxattr user.color", lambda: os.getxattr("f2", "user.color").decode())
    result("setxattr user.size", lambda: os.setxattr("f2", "user.size", b"12345"))
    result("setxattr user.color (replace)",
           lambda: os.setxattr("f2", "user.color", b"green", os.XATTR_REPLACE))
    result("getxattr user.color", lambda: os.getxattr("f2", "user.color").decode())
    result("setxattr user.color CREATE (exists)",
           lambda: os.setxattr("f2", "user.color", b"red", os.XATTR_CREATE))
    result("setxattr user.new REPLACE (missing)",
           lambda: os.setxattr("f2", "user.new", b"v", os.XATTR_REPLACE))
    result("listxattr f2", lambda: user_xattrs("f2"))
    result("getxattr user.missing", lambda: os.getxattr("f2", "user.missing"))
    result("removexattr user.size", lambda: os.removexattr("f2", "user.size"))
    result("removexattr user.size again", lambda: os.removexattr("f2", "user.size"))
    result("listxattr f2", lambda: user_xattrs("f2"))
    result("setxattr on dir modes", lambda: os.setxattr("modes", "user.d", b"dirval"))
    result("getxattr on dir modes", lambda: os.getxattr("modes", "user.d").decode())
    result("getxattr after rename", lambda: (os.rename("f2", "f3"),
                                             os.getxattr("f3", "user.color").decode())[1])
    result("rename f3 f2", lambda: os.rename("f3", "f2"))


# ---- times, parent times, open-unlinked files, the cloud root -----------
# (issue 20: atime and ctime kept, parent directories' times, files
# unlinked or replaced while open, chmod/chown/utime on a cloud's root)

def times_of(path):
    st = os.lstat(path)
    return (st.st_atime_ns, st.st_mtime_ns, st.st_ctime_ns)


def moved(before, after):
    """How each of atime, mtime, ctime went from before to after."""
    words = []
    for name, b, a in zip("amc", before, after):
        words.append(f"{name}={'later' if a > b else 'same' if a == b else 'earlier'}")
    return " ".join(words)


def time_effect(label, paths, fn):
    """Run fn as `label` and print how it moved the times of each path.

    A path is a name, or (name before, name after, name shown) for an
    entry the operation moves or that has a long name.  File systems stamp
    times from a coarse clock (a few ms): wait long enough that a change
    shows as "later"."""
    paths = [(p, p, p) if isinstance(p, str) else p for p in paths]
    before = {}
    for old, new, shown in paths:
        try:
            before[shown] = times_of(old)
        except OSError:
            before[shown] = None
    time.sleep(0.03)
    result(label, fn)
    for old, new, shown in paths:
        def effect(new=new, shown=shown):
            after = times_of(new)
            return "(new)" if before[shown] is None else moved(before[shown], after)
        result(f"  times of {shown} after {label}", effect)


def relations(path):
    """atime and ctime against mtime, for times no one set explicitly."""
    a, m, c = times_of(path)
    rel = lambda x: "=" if x == m else ">" if x > m else "<"
    return f"atime{rel(a)}mtime ctime{rel(c)}mtime"


def touch(flag, path):
    """touch -a / -m: one time set to now, the other left alone (UTIME_OMIT)."""
    proc = subprocess.run(["touch", flag, path], capture_output=True)
    if proc.returncode:
        raise OSError(errno.EIO, proc.stderr.decode().strip())


def read_some(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        return digest(os.read(fd, 1 << 16))
    finally:
        os.close(fd)


def times():
    result("create t1", lambda: create("t1"))
    result("times of new t1", lambda: relations("t1"))
    time_effect("write t1", ["t1"], lambda: pwrite("t1", b"some content\n", 0))
    time_effect("read t1 (atime was before mtime)", ["t1"], lambda: read_some("t1"))
    time_effect("read t1 again (relatime: atime is after mtime)", ["t1"],
                lambda: read_some("t1"))
    time_effect("chmod t1 0640", ["t1"], lambda: os.chmod("t1", 0o640))
    time_effect("chown t1 to its owner", ["t1"],
                lambda: os.chown("t1", os.lstat("t1").st_uid, os.lstat("t1").st_gid))
    time_effect("setxattr t1 user.tag", ["t1"], lambda: os.setxattr("t1", "user.tag", b"v"))
    time_effect("removexattr t1 user.tag", ["t1"], lambda: os.removexattr("t1", "user.tag"))
    time_effect("rename t1 t2", [("t1", "t2", "t1 (now t2)")], lambda: os.rename("t1", "t2"))
    time_effect("append t2", ["t2"], lambda: append("t2", b"more\n"))
    time_effect("truncate t2 4", ["t2"], lambda: os.truncate("t2", 4))
    time_effect("touch -a t2", ["t2"], lambda: touch("-a", "t2"))
    time_effect("touch -m t2", ["t2"], lambda: touch("-m", "t2"))
    time_effect("utime t2 (atime and mtime given)", ["t2"],
                lambda: os.utime("t2", ns=(1_200_000_000_111_111_111,
                                           1_100_000_000_222_222_222)))
    result("atime and mtime of t2 as given", lambda: times_of("t2")[:2])
    time_effect("read t2 (relatime: atime was after mtime, but a day old)", ["t2"],
                lambda: read_some("t2"))
    result("read t2 content", lambda: read_all("t2"))
    time_effect("mkdir td", ["td"], lambda: os.mkdir("td"))
    result("times of new td", lambda: relations("td"))
    time_effect("chmod td 0700", ["td"], lambda: os.chmod("td", 0o700))
    time_effect("utime td", ["td"],
                lambda: os.utime("td", ns=(1_300_000_000_000_000_000,
                                           1_250_000_000_000_000_000)))
    result("atime and mtime of td as given", lambda: times_of("td")[:2])
    result("unlink t2", lambda: os.unlink("t2"))
    result("rmdir td", lambda: os.rmdir("td"))


def parent_times():
    result("mkdir pa", lambda: os.mkdir("pa"))
    result("mkdir pb", lambda: os.mkdir("pb"))
    time_effect("create pa/f", ["pa"], lambda: create("pa/f"))
    time_effect("write pa/f", ["pa"], lambda: pwrite("pa/f", b"data", 0))
    time_effect("mkdir pa/sub", ["pa"], lambda: os.mkdir("pa/sub"))
    time_effect("symlink pa/ln", ["pa"], lambda: os.symlink("f", "pa/ln"))
    time_effect("chmod pa/f", ["pa"], lambda: os.chmod("pa/f", 0o600))
    time_effect("rename pa/f pb/f", ["pa", "pb"], lambda: os.rename("pa/f", "pb/f"))
    time_effect("rename pb/f pb/g", ["pb"], lambda: os.rename("pb/f", "pb/g"))
    result("create pb/h", lambda: create("pb/h"))
    time_effect("rename pb/g over pb/h", ["pb"], lambda: os.rename("pb/g", "pb/h"))
    time_effect("unlink pb/h", ["pb"], lambda: os.unlink("pb/h"))
    time_effect("unlink pa/ln", ["pa"], lambda: os.unlink("pa/ln"))
    time_effect("rmdir pa/sub", ["pa"], lambda: os.rmdir("pa/sub"))
    time_effect("rename pb pa/pb (a directory)", ["pa", "."],
                lambda: os.rename("pb", "pa/pb"))
    time_effect("rmdir pa/pb", ["pa"], lambda: os.rmdir("pa/pb"))
    time_effect("list pa (relatime: its atime is before its mtime)", ["pa"],
                lambda: listing("pa"))
    time_effect("list pa again (relatime: its atime is after its mtime)", ["pa"],
                lambda: listing("pa"))
    result("rmdir pa", lambda: os.rmdir("pa"))


def times_after_a_pause():
    """Times the cache moved (a read's atime, a setxattr's and a rename's
    ctime, a directory's mtime) stay after a pause longer than the tests'
    ttl, when a mount asks the cloud again."""
    result("mkdir kp", lambda: os.mkdir("kp"))
    result("create kp/f", lambda: create("kp/f"))
    result("write kp/f", lambda: pwrite("kp/f", b"kept times\n", 0))
    time.sleep(0.03)
    result("read kp/f", lambda: read_some("kp/f"))
    result("setxattr kp/f user.k", lambda: os.setxattr("kp/f", "user.k", b"v"))
    result("rename kp/f kp/g", lambda: os.rename("kp/f", "kp/g"))
    before = {p: times_of(p) for p in ("kp", "kp/g")}
    time.sleep(2.5)
    for p in ("kp", "kp/g"):
        result(f"times of {p} after a pause", lambda p=p: moved(before[p], times_of(p)))
    result("unlink kp/g", lambda: os.unlink("kp/g"))
    result("rmdir kp", lambda: os.rmdir("kp"))


def fd_describe(fd):
    st = os.fstat(fd)
    return (f"{kind(st.st_mode)} mode={stat.S_IMODE(st.st_mode):04o} size={st.st_size} "
            f"nlink={st.st_nlink}")


def fd_read(fd, size=1 << 20):
    return digest(os.pread(fd, size, 0))


def open_unlinked():
    result("create u1", lambda: create("u1"))
    result("write u1", lambda: pwrite("u1", b"kept until the last close\n" * 100, 0))
    fd = os.open("u1", os.O_RDWR)
    result("unlink u1 while open", lambda: os.unlink("u1"))
    result("stat u1 after unlink", lambda: describe("u1"))
    result("fstat unlinked u1", lambda: fd_describe(fd))
    result("pread unlinked u1", lambda: fd_read(fd))
    result("pwrite unlinked u1", lambda: os.pwrite(fd, b"still writable", 2600))
    result("fstat unlinked u1 after pwrite", lambda: fd_describe(fd))
    result("pread unlinked u1 after pwrite", lambda: fd_read(fd))
    result("ftruncate unlinked u1", lambda: os.ftruncate(fd, 100))
    result("fchmod unlinked u1", lambda: os.fchmod(fd, 0o600))
    result("fstat unlinked u1 after ftruncate, fchmod", lambda: fd_describe(fd))
    result("pread unlinked u1 after ftruncate", lambda: fd_read(fd))
    result("list after unlink", lambda: listing("."))
    result("close unlinked u1", lambda: os.close(fd))
    result("create u1 again (a new file)", lambda: create("u1"))
    result("read new u1", lambda: read_all("u1"))
    result("unlink new u1", lambda: os.unlink("u1"))

    # a temporary file: created, unlinked at once, then used
    fd = os.open("scratch", os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    result("unlink new scratch", lambda: os.unlink("scratch"))
    result("write scratch", lambda: os.pwrite(fd, b"0123456789" * 700, 0))
    result("fstat scratch", lambda: fd_describe(fd))
    result("pread scratch", lambda: fd_read(fd))
    result("fsync scratch", lambda: os.fsync(fd))
    result("close scratch", lambda: os.close(fd))
    result("stat scratch after close", lambda: describe("scratch"))

    # two descriptors: the first close keeps the data for the second
    result("create u2", lambda: create("u2"))
    result("write u2", lambda: pwrite("u2", b"two readers\n" * 50, 0))
    fd1 = os.open("u2", os.O_RDONLY)
    fd2 = os.open("u2", os.O_RDONLY)
    result("unlink u2 (two descriptors open)", lambda: os.unlink("u2"))
    result("close first u2 descriptor", lambda: os.close(fd1))
    result("pread second u2 descriptor", lambda: fd_read(fd2))
    result("fstat second u2 descriptor", lambda: fd_describe(fd2))
    result("close second u2 descriptor", lambda: os.close(fd2))

    # replaced by rename while open: the open file keeps the old content
    result("create r1", lambda: create("r1"))
    result("write r1", lambda: pwrite("r1", b"the old content\n" * 40, 0))
    result("create r2", lambda: create("r2"))
    result("write r2", lambda: pwrite("r2", b"new\n", 0))
    fd = os.open("r1", os.O_RDONLY)
    result("rename r2 over open r1", lambda: os.rename("r2", "r1"))
    result("pread replaced r1", lambda: fd_read(fd))
    result("fstat replaced r1", lambda: fd_describe(fd))
    result("read r1 by name", lambda: read_all("r1"))
    result("close replaced r1", lambda: os.close(fd))
    result("read r1 after close", lambda: read_all("r1"))
    result("unlink r1", lambda: os.unlink("r1"))


def cloud_root(root):
    """chmod, chown and utime on ROOT, then put things back."""
    st = os.stat(root)
    result("chmod root 0750", lambda: os.chmod(root, 0o750))
    result("stat root", lambda: describe(root))
    result("chown root to its owner", lambda: os.chown(root, st.st_uid, st.st_gid))
    time_effect("utime root", [(root, root, "root")],
                lambda: os.utime(root, ns=(1_400_000_000_000_000_000,
                                           1_350_000_000_000_000_000)))
    result("atime and mtime of root as given", lambda: times_of(root)[:2])
    result("chmod root back", lambda: os.chmod(root, stat.S_IMODE(st.st_mode)))
    result("utime root back", lambda: os.utime(root, ns=(st.st_atime_ns, st.st_mtime_ns)))


# ---- special files, hard links, link counts, long paths (issue 20) ----

def owner(path):
    st = os.lstat(path)
    return f"{st.st_uid}:{st.st_gid}"


def nlink(path):
    return os.lstat(path).st_nlink


def through_fifo(path, data):
    """Open both ends of FIFO path, send data, return what arrives."""
    r = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        w = os.open(path, os.O_WRONLY)
        try:
            os.write(w, data)
        finally:
            os.close(w)
        return os.read(r, 100).decode()
    finally:
        os.close(r)


def special_files():
    """mkfifo/mknod: FIFOs, sockets and device nodes (pjdfstest mkfifo, mknod)."""
    result("mkdir nodes", lambda: os.mkdir("nodes"))
    result("mkfifo fifo", lambda: os.mkfifo("nodes/fifo", 0o640))
    result("stat fifo", lambda: describe("nodes/fifo"))
    result("mkfifo fifo again", lambda: os.mkfifo("nodes/fifo"))
    result("mkfifo over a file", lambda: os.mkfifo("f2"))
    result("mkfifo in a missing directory", lambda: os.mkfifo("nope/fifo"))
    result("mkfifo under a file", lambda: os.mkfifo("f2/fifo"))
    result("data through the fifo", lambda: through_fifo("nodes/fifo", b"piped"))
    result("mknod socket", lambda: os.mknod("nodes/sock", 0o600 | stat.S_IFSOCK))
    result("stat socket", lambda: describe("nodes/sock"))
    result("mknod chardev 1:3", lambda: os.mknod(
        "nodes/chr", 0o600 | stat.S_IFCHR, os.makedev(1, 3)))
    result("stat chardev", lambda: describe("nodes/chr"))
    result("mknod blockdev 7:200", lambda: os.mknod(
        "nodes/blk", 0o660 | stat.S_IFBLK, os.makedev(7, 200)))
    result("stat blockdev", lambda: describe("nodes/blk"))
    result("mknod regular (no type)", lambda: os.mknod("nodes/reg", 0o640))
    result("stat regular", lambda: describe("nodes/reg"))
    result("list nodes", lambda: listing("nodes"))
    result("chmod fifo 0604", lambda: os.chmod("nodes/fifo", 0o604))
    result("stat fifo", lambda: describe("nodes/fifo"))
    result("chown chardev 1234:5678", lambda: os.chown("nodes/chr", 1234, 5678))
    result("owner chardev", lambda: owner("nodes/chr"))
    result("stat chardev", lambda: describe("nodes/chr"))
    result("utime socket", lambda: os.utime("nodes/sock", ns=(
        1_000_000_000_000_000_000, 1_222_333_444_555_666_777)))
    result("stat socket", lambda: describe("nodes/sock", with_mtime=True))
    result("truncate fifo", lambda: os.truncate("nodes/fifo", 0))
    result("open fifo O_DIRECTORY", lambda: os.close(
        os.open("nodes/fifo", os.O_RDONLY | os.O_DIRECTORY)))
    result("rename fifo fifo2", lambda: os.rename("nodes/fifo", "nodes/fifo2"))
    result("stat fifo", lambda: describe("nodes/fifo"))
    result("stat fifo2", lambda: describe("nodes/fifo2"))
    result("data through fifo2", lambda: through_fifo("nodes/fifo2", b"moved"))
    result("rename blockdev over socket", lambda: os.rename("nodes/blk", "nodes/sock"))
    result("stat socket (now the blockdev)", lambda: describe("nodes/sock"))
    result("list nodes", lambda: listing("nodes"))
    result("rmdir nodes (non-empty)", lambda: os.rmdir("nodes"))
    for name in ("fifo2", "sock", "chr", "reg"):
        result(f"unlink {name}", lambda: os.unlink(f"nodes/{name}"))
    result("rmdir nodes", lambda: os.rmdir("nodes"))


def hard_links():
    """link(2): two names, one file (pjdfstest link)."""
    result("create h1", lambda: create("h1"))
    result("write h1", lambda: pwrite("h1", b"shared bytes", 0))
    result("link h1 h2", lambda: os.link("h1", "h2"))
    result("stat h1", lambda: describe("h1"))
    result("stat h2", lambda: describe("h2"))
    result("h1 and h2 are one inode",
           lambda: os.stat("h1").st_ino == os.stat("h2").st_ino)
    result("write h2", lambda: pwrite("h2", b"SHARED", 0))
    result("read h1", lambda: read_all("h1"))
    result("link h1 h2 again", lambda: os.link("h1", "h2"))
    result("link missing h3", lambda: os.link("missing", "h3"))
    result("link h1 into a missing directory", lambda: os.link("h1", "nope/h3"))
    result("mkdir hd", lambda: os.mkdir("hd"))
    result("link a directory", lambda: os.link("hd", "hd2"))
    result("link h1 hd/h3", lambda: os.link("h1", "hd/h3"))
    result("nlink h2 (three names)", lambda: nlink("h2"))
    result("chmod h2 0600", lambda: os.chmod("h2", 0o600))
    result("stat h1 (chmod through h2)", lambda: describe("h1"))
    result("stat hd/h3", lambda: describe("hd/h3"))
    result("rename h2 onto hd/h3 (two names of one file)", lambda: os.rename("h2", "hd/h3"))
    result("list after it (both names stay)", lambda: listing("hd") + " " + listing("."))
    result("unlink h1", lambda: os.unlink("h1"))
    result("stat h1", lambda: describe("h1"))
    result("stat h2 (two names left)", lambda: describe("h2"))
    result("read hd/h3", lambda: read_all("hd/h3"))
    result("rename hd/h3 h4", lambda: os.rename("hd/h3", "h4"))
    result("h2 and h4 are one inode",
           lambda: os.stat("h2").st_ino == os.stat("h4").st_ino)
    result("unlink h4", lambda: os.unlink("h4"))
    result("stat h2 (one name left)", lambda: describe("h2"))
    result("append h2", lambda: append("h2", b" and more"))
    result("read h2", lambda: read_all("h2"))
    result("symlink hs -> h2", lambda: os.symlink("h2", "hs"))
    result("link the symlink hs hs2", lambda: os.link("hs", "hs2", follow_symlinks=False))
    result("lstat hs2", lambda: describe("hs2"))
    result("readlink hs2", lambda: os.readlink("hs2"))
    for name in ("hs", "hs2", "h2"):
        result(f"unlink {name}", lambda: os.unlink(name))
    result("rmdir hd", lambda: os.rmdir("hd"))
    result("link h5 while it is written (open since its create)", link_while_written)


def link_while_written():
    fd = os.open("h5", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        os.write(fd, b"written before the link")
        os.link("h5", "h6")
        os.write(fd, b", and after")
        os.close(fd)
        fd = -1
        return f"h5: {read_all('h5')}; h6: {read_all('h6')}"
    finally:
        if fd >= 0:
            os.close(fd)
        for name in ("h5", "h6"):
            if os.path.lexists(name):
                os.unlink(name)


def directory_links():
    """A directory's link count: 2 plus one per subdirectory."""
    result("mkdir nl", lambda: os.mkdir("nl"))
    result("nlink nl (empty)", lambda: nlink("nl"))
    result("mkdir nl/a nl/b", lambda: (os.mkdir("nl/a"), os.mkdir("nl/b"))[0])
    result("create nl/f", lambda: create("nl/f"))
    result("nlink nl (two subdirectories and a file)", lambda: nlink("nl"))
    result("nlink nl/a", lambda: nlink("nl/a"))
    result("rmdir nl/a", lambda: os.rmdir("nl/a"))
    result("nlink nl (one subdirectory)", lambda: nlink("nl"))
    result("mkdir nl2", lambda: os.mkdir("nl2"))
    result("rename nl/b nl2/b", lambda: os.rename("nl/b", "nl2/b"))
    result("nlink nl (none left)", lambda: nlink("nl"))
    result("nlink nl2 (one)", lambda: nlink("nl2"))
    result("listing of nl2 then nlink", lambda: (listing("nl2"), nlink("nl2"))[1])
    for path in ("nl2/b", "nl2"):
        result(f"rmdir {path}", lambda: os.rmdir(path))
    result("unlink nl/f", lambda: os.unlink("nl/f"))
    result("rmdir nl", lambda: os.rmdir("nl"))


LONG_NAME = "long-" + "d" * 195   # 200 bytes a component
LONG_DEPTH = 25                   # 25 x 201 bytes: past PATH_MAX (4096)


def long_path_walk():
    """Make LONG_DEPTH nested directories through directory fds, and in
    the deepest: a file (written, read, renamed, linked, chmod, utime,
    xattr), a fifo and a symlink; then remove it all again.  Returns a
    one-line summary; the first failure raises."""
    fds = [os.open(".", os.O_RDONLY | os.O_DIRECTORY)]
    try:
        for _ in range(LONG_DEPTH):
            os.mkdir(LONG_NAME, dir_fd=fds[-1])
            fds.append(os.open(LONG_NAME, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fds[-1]))
        d = fds[-1]
        fd = os.open("f", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644, dir_fd=d)
        os.write(fd, b"deep data")
        os.close(fd)
        os.chmod("f", 0o600, dir_fd=d)
        os.utime("f", ns=(1_000_000_000_000_000_000, 1_100_000_000_000_000_000), dir_fd=d)
        fd = os.open("f", os.O_RDONLY, dir_fd=d)
        os.setxattr(fd, "user.deep", b"yes")
        got = [os.read(fd, 100).decode(), os.getxattr(fd, "user.deep").decode()]
        os.close(fd)
        os.rename("f", "g", src_dir_fd=d, dst_dir_fd=d)
        st = os.stat("g", dir_fd=d)
        got.append(f"mode={stat.S_IMODE(st.st_mode):04o} mtime_ns={st.st_mtime_ns}")
        os.mkfifo("p", dir_fd=d)
        got.append(kind(os.stat("p", dir_fd=d).st_mode))
        os.symlink("g", "s", dir_fd=d)
        got.append(os.readlink("s", dir_fd=d))
        fresh = os.open(".", os.O_RDONLY | os.O_DIRECTORY, dir_fd=d)
        got.append(" ".join(sorted(os.listdir(fresh))))
        os.close(fresh)
        for name in ("g", "p", "s"):
            os.unlink(name, dir_fd=d)
        for i in range(LONG_DEPTH, 0, -1):
            os.close(fds.pop())
            os.rmdir(LONG_NAME, dir_fd=fds[-1])
        got.append(listing(".") if not os.path.exists(LONG_NAME) else "left behind")
        return " | ".join(got)
    finally:
        for fd in fds:
            os.close(fd)


def long_path_link():
    """link(2) deep down: two names past PATH_MAX."""
    fds = [os.open(".", os.O_RDONLY | os.O_DIRECTORY)]
    try:
        for _ in range(LONG_DEPTH):
            os.mkdir(LONG_NAME, dir_fd=fds[-1])
            fds.append(os.open(LONG_NAME, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fds[-1]))
        d = fds[-1]
        os.close(os.open("a", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=d))
        os.link("a", "b", src_dir_fd=d, dst_dir_fd=d)
        n = os.stat("b", dir_fd=d).st_nlink
        for name in ("a", "b"):
            os.unlink(name, dir_fd=d)
        for i in range(LONG_DEPTH, 0, -1):
            os.close(fds.pop())
            os.rmdir(LONG_NAME, dir_fd=fds[-1])
        return f"nlink={n}"
    finally:
        for fd in fds:
            os.close(fd)


def long_paths():
    """Paths longer than PATH_MAX, reached through directory fds."""
    result("path past PATH_MAX: mkdir, files, fifo, symlink, rmdir", long_path_walk)
    result("path past PATH_MAX: hard link", long_path_link)
    result("create a 255-byte name", lambda: create("n" * 255))
    result("unlink the 255-byte name", lambda: os.unlink("n" * 255))
    result("create a 256-byte name", lambda: create("n" * 256))
    result("mkdir a 256-byte name", lambda: os.mkdir("n" * 256))
    result("stat a 256-byte name", lambda: describe("n" * 256))


def pjdfstest_groups():
    """Errno cases of pjdfstest's groups (chmod, chown, utimensat, rename,
    unlink, rmdir, mkdir, symlink, truncate, open) not covered above."""
    result("mkdir pj", lambda: os.mkdir("pj"))
    result("create pj/f", lambda: create("pj/f"))
    result("symlink pj/l -> f", lambda: os.symlink("f", "pj/l"))
    # chmod
    result("chmod through a symlink", lambda: os.chmod("pj/l", 0o640))
    result("stat pj/f", lambda: describe("pj/f"))
    result("chmod under a file", lambda: os.chmod("pj/f/x", 0o644))
    result("chmod 04755 (setuid)", lambda: os.chmod("pj/f", 0o4755))
    result("stat pj/f", lambda: describe("pj/f"))
    # chown
    result("chown pj/f 65534:65533", lambda: os.chown("pj/f", 65534, 65533))
    result("owner pj/f", lambda: owner("pj/f"))
    result("chown pj/f -1:-1 (no change)", lambda: os.chown("pj/f", -1, -1))
    result("owner pj/f", lambda: owner("pj/f"))
    result("chown the symlink itself", lambda: os.chown("pj/l", 4321, 4321,
                                                        follow_symlinks=False))
    result("owner pj/l", lambda: owner("pj/l"))
    result("owner pj/f (not changed)", lambda: owner("pj/f"))
    result("chown missing", lambda: os.chown("pj/missing", 1, 1))
    # utimensat
    result("utime pj/f", lambda: os.utime("pj/f", ns=(1_000_000_000_000_000_000,
                                                      1_500_000_000_000_000_001)))
    result("stat pj/f", lambda: describe("pj/f", with_mtime=True))
    result("utime before the epoch", lambda: os.utime("pj/f", ns=(0, -1_000_000_000)))
    result("stat pj/f", lambda: describe("pj/f", with_mtime=True))
    result("utime under a file", lambda: os.utime("pj/f/x", ns=(0, 0)))
    # rename
    result("mkdir pj/d pj/d/sub", lambda: (os.mkdir("pj/d"), os.mkdir("pj/d/sub"))[0])
    result("rename a directory into itself", lambda: os.rename("pj/d", "pj/d/sub/d"))
    result("rename under a file", lambda: os.rename("pj/d", "pj/f/d"))
    result("rename . ", lambda: os.rename("pj/d/.", "pj/e"))
    result("mkdir pj/empty", lambda: os.mkdir("pj/empty"))
    result("rename a directory over an empty one", lambda: os.rename("pj/d/sub", "pj/empty"))
    result("list pj", lambda: listing("pj"))
    result("rename a symlink", lambda: os.rename("pj/l", "pj/l2"))
    result("readlink pj/l2", lambda: os.readlink("pj/l2"))
    result("rename a file onto itself", lambda: os.rename("pj/f", "pj/f"))
    # unlink, rmdir
    result("unlink under a file", lambda: os.unlink("pj/f/x"))
    result("unlink a symlink (not its target)", lambda: os.unlink("pj/l2"))
    result("stat pj/f", lambda: describe("pj/f"))
    result("rmdir .", lambda: os.rmdir("pj/empty/."))
    result("rmdir ..", lambda: os.rmdir("pj/empty/.."))
    result("rmdir a symlink to a directory", lambda: (
        os.symlink("empty", "pj/ld"), os.rmdir("pj/ld"))[1])
    result("unlink pj/ld", lambda: os.unlink("pj/ld"))
    # mkdir
    result("mkdir 01777 (sticky)", lambda: os.mkdir("pj/sticky", 0o1777))
    result("stat pj/sticky", lambda: describe("pj/sticky"))
    result("mkdir 02755 (setgid)", lambda: os.mkdir("pj/sgid", 0o2755))
    result("stat pj/sgid", lambda: describe("pj/sgid"))
    result("mkdir over a symlink", lambda: (os.symlink("nowhere", "pj/ls"),
                                            os.mkdir("pj/ls"))[1])
    result("unlink pj/ls", lambda: os.unlink("pj/ls"))
    # symlink
    result("symlink over a directory", lambda: os.symlink("x", "pj/sticky"))
    result("symlink with a 1000-byte target", lambda: os.symlink("t" * 1000, "pj/longlink"))
    result("readlink the long target", lambda: len(os.readlink("pj/longlink")))
    result("unlink pj/longlink", lambda: os.unlink("pj/longlink"))
    # truncate
    result("truncate a directory", lambda: os.truncate("pj/sticky", 0))
    result("truncate to a negative size", lambda: os.truncate("pj/f", -1))
    result("truncate missing", lambda: os.truncate("pj/missing", 0))
    result("truncate through a symlink", lambda: (os.symlink("f", "pj/tl"),
                                                  os.truncate("pj/tl", 3))[1])
    result("stat pj/f", lambda: describe("pj/f"))
    result("unlink pj/tl", lambda: os.unlink("pj/tl"))
    # open
    result("open O_CREAT|O_EXCL on a symlink", lambda: (
        os.symlink("dangling", "pj/ol"), create("pj/ol"))[1])
    result("open a symlink O_NOFOLLOW", lambda: os.close(
        os.open("pj/ol", os.O_RDONLY | os.O_NOFOLLOW)))
    result("open O_CREAT through a dangling symlink", lambda: create(
        "pj/ol", flags=os.O_WRONLY | os.O_CREAT))
    result("stat pj/dangling", lambda: describe("pj/dangling"))
    result("open a directory for writing", lambda: os.close(os.open("pj/sticky", os.O_WRONLY)))
    result("open O_CREAT under a file", lambda: create("pj/f/x"))
    result("open O_CREAT 0 mode, then read it", lambda: (
        create("pj/zero", 0), read_all("pj/zero"))[1])
    result("stat pj/zero", lambda: describe("pj/zero"))
    for name in ("ol", "dangling", "zero", "f"):
        result(f"unlink pj/{name}", lambda: os.unlink(f"pj/{name}"))
    for name in ("sticky", "sgid", "empty/sub", "empty", "d"):
        result(f"rmdir pj/{name}", lambda: os.rmdir(f"pj/{name}"))
    result("rmdir pj", lambda: os.rmdir("pj"))


NOBODY = 65534


def as_nobody(fn):
    """fn() run by uid/gid 65534 in a child process (kernel permission
    checks, as pjdfstest runs its cases as other users); its value or
    errno name.  The child keeps our working directory, so nothing above
    it needs to be searchable."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            value = fn()
            text = "ok" if value is None else str(value)
        except OSError as e:
            text = errno.errorcode.get(e.errno, str(e.errno))
        except BaseException as e:  # never let the child run the rest
            text = f"error {e!r}"
        os.write(w, text.encode())
        os._exit(0)
    os.close(w)
    with os.fdopen(r) as f:
        text = f.read()
    os.waitpid(pid, 0)
    return text


def permissions():
    """pjdfstest's EACCES/EPERM cases: another user (65534) against root's
    files, modes and a sticky directory; the kernel decides from the modes
    and owners skyfs reports."""
    if os.geteuid() != 0:
        result("permissions (needs root)", lambda: "skipped: not root")
        return
    result("mkdir perm 0755", lambda: os.mkdir("perm", 0o755))
    result("create perm/public 0644", lambda: create("perm/public", 0o644))
    result("write perm/public", lambda: pwrite("perm/public", b"for all to read", 0))
    result("create perm/private 0600", lambda: create("perm/private", 0o600))
    result("mkdir perm/sticky 01777", lambda: (os.mkdir("perm/sticky"),
                                               os.chmod("perm/sticky", 0o1777))[0])
    result("create perm/sticky/roots 0666", lambda: (create("perm/sticky/roots"),
                                                     os.chmod("perm/sticky/roots", 0o666))[0])
    cases = (
        ("read a 0644 file", lambda: read_all("perm/public")),
        ("read a 0600 file", lambda: read_all("perm/private")),
        ("write a 0644 file", lambda: pwrite("perm/public", b"x", 0)),
        ("truncate a 0644 file", lambda: os.truncate("perm/public", 0)),
        ("create in a 0755 directory", lambda: create("perm/new")),
        ("mkdir in a 0755 directory", lambda: os.mkdir("perm/newdir")),
        ("mkfifo in a 0755 directory", lambda: os.mkfifo("perm/newfifo")),
        ("unlink in a 0755 directory", lambda: os.unlink("perm/public")),
        ("rename in a 0755 directory", lambda: os.rename("perm/public", "perm/moved")),
        ("chmod root's file", lambda: os.chmod("perm/public", 0o666)),
        ("chown root's file to itself", lambda: os.chown("perm/public", NOBODY, NOBODY)),
        ("utime root's file to given times", lambda: os.utime("perm/public", ns=(0, 0))),
        ("utime root's 0644 file to now", lambda: os.utime("perm/public")),
        ("utime root's 0666 file to now", lambda: os.utime("perm/sticky/roots")),
        ("create in a sticky 01777 directory", lambda: create("perm/sticky/mine")),
        ("mkfifo in the sticky directory", lambda: os.mkfifo("perm/sticky/myfifo", 0o600)),
        ("chmod its own fifo 0640", lambda: os.chmod("perm/sticky/myfifo", 0o640)),
        ("unlink root's file in the sticky directory", lambda: os.unlink("perm/sticky/roots")),
        ("rename root's file in the sticky directory",
         lambda: os.rename("perm/sticky/roots", "perm/sticky/taken")),
        ("rename its own file in the sticky directory",
         lambda: os.rename("perm/sticky/mine", "perm/sticky/mine2")),
        ("unlink its own file in the sticky directory", lambda: os.unlink("perm/sticky/mine2")),
    )
    for label, fn in cases:
        result(f"nobody: {label}", lambda: as_nobody(fn))
    result("owner of nobody's fifo", lambda: owner("perm/sticky/myfifo"))
    result("stat nobody's fifo", lambda: describe("perm/sticky/myfifo"))
    result("list perm/sticky", lambda: listing("perm/sticky"))
    result("read perm/public (unchanged)", lambda: read_all("perm/public"))
    for name in ("sticky/myfifo", "sticky/roots", "public", "private"):
        result(f"unlink perm/{name}", lambda: os.unlink(f"perm/{name}"))
    for name in ("perm/sticky", "perm"):
        result(f"rmdir {name}", lambda: os.rmdir(name))


def final_state():
    result("list .", lambda: listing("."))
    for name in sorted(os.listdir(".")):
        explicit = name == "modes"  # f2 was written after its utime
        result(f"final stat {name}", lambda: describe(name, with_mtime=explicit))


TRANSCRIPT_END = "# done: the whole transcript ran"


def main():
    global KIND
    args = sys.argv[1:]
    root = None
    if len(args) >= 3 and args[-2] == "--root":
        root = os.path.abspath(args[-1])
        args = args[:-2]
    if len(args) == 3 and args[1] == "--kind":
        KIND = args[2]
        args = args[:1]
    if len(args) != 1 or (KIND is not None and KIND not in KNOWN_DIFFERENCES):
        sys.exit("usage: posix_ops.py DIR [--kind " + "|".join(KNOWN_DIFFERENCES) + "]"
                 " [--root ROOT]")
    os.chdir(args[0])
    os.umask(0o022)
    for part in (files_and_data, renames, directories, symlinks, attributes,
                 xattrs, times, parent_times, times_after_a_pause, open_unlinked,
                 special_files, hard_links, directory_links, long_paths,
                 pjdfstest_groups, permissions, final_state):
        print(f"# {part.__name__}")
        part()
    if root:
        print("# cloud_root")
        cloud_root(root)
    # The last line: a transcript without it stopped early (a crash is the
    # same on both sides, so the diff alone would not see it).
    print(TRANSCRIPT_END)


if __name__ == "__main__":
    main()
