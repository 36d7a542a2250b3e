#!/usr/bin/env python3
"""posix_ops.py - runs a fixed script of POSIX file operations in DIR.

    python3 posix_ops.py DIR [ROOT]

DIR must exist and be empty.  ROOT (optional) is a directory whose mode,
owner and times the script may change and restores: a cloud's root
directory on a mount, any directory on the plain side.  Every operation prints one line: what was
done and its result ("ok", a value, or the errno name).  Nothing printed
depends on where DIR is, on inode numbers or on times that were not set
explicitly, so running the script on a skyfs mount and on a plain
directory must print the same lines: local_posix.sh diffs the two.

Times that were not set explicitly are shown by how an operation moved
them: "a=later m=same c=later" (atime, mtime, ctime of the path after the
operation, against before it).

Used by tests/integration/local_posix.sh, s3_posix.sh and azure_posix.sh,
which compare the transcripts with posix_compare.py (the differences each
cloud kind is known to have are listed, with their reasons, in
posix_known_differences.txt).
"""

import errno
import hashlib
import os
import stat
import subprocess
import sys
import time


def result(label, fn):
    """Run fn(); print 'label -> value' or 'label -> ERRNO'."""
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
                       (stat.S_ISLNK, "symlink")):
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


def final_state():
    result("list .", lambda: listing("."))
    for name in sorted(os.listdir(".")):
        explicit = name == "modes"  # f2 was written after its utime
        result(f"final stat {name}", lambda: describe(name, with_mtime=explicit))


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit("usage: posix_ops.py DIR [ROOT]")
    root = os.path.abspath(sys.argv[2]) if len(sys.argv) == 3 else None
    os.chdir(sys.argv[1])
    os.umask(0o022)
    for part in (files_and_data, renames, directories, symlinks, attributes,
                 xattrs, times, parent_times, times_after_a_pause, open_unlinked,
                 final_state):
        print(f"# {part.__name__}")
        part()
    if root:
        print("# cloud_root")
        cloud_root(root)


if __name__ == "__main__":
    main()
