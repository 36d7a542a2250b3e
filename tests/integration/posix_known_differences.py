"""posix_known_differences.py - what a cloud kind cannot do as a plain
directory does, operation by operation, and why.

KNOWN_DIFFERENCES[cloud_kind][label] is the reason the operation named
`label` in posix_ops.py differs on that cloud kind.  posix_ops.py skips
such an operation on both sides of the comparison and prints "label ->
known difference: REASON" instead, so the transcripts still agree, and
the list of exceptions lives here, once, each with its reason.  What the
cloud kind does instead is checked by its test file (s3_posix.sh,
azure_posix.sh, gcs_posix.sh).  README.md's "POSIX
semantics per cloud kind" says the same for people.
"""

_NO_HARD_LINKS = ("object stores have no hard links: an object has exactly one key, "
                  "so link() is refused with EPERM")
_KEY_LIMIT = ("object keys are at most 1024 bytes (S3 and Azure), far less than a "
              "path past PATH_MAX")

_OBJECT_STORES = {
    "link h1 h2": _NO_HARD_LINKS,
    "link h1 h2 again": _NO_HARD_LINKS,
    "link h1 hd/h3": _NO_HARD_LINKS,
    "link the symlink hs hs2": _NO_HARD_LINKS,
    "link h5 while it is written (open since its create)": _NO_HARD_LINKS,
    "path past PATH_MAX: mkdir, files, fifo, symlink, rmdir": _KEY_LIMIT,
    "path past PATH_MAX: hard link": _KEY_LIMIT,
}

# Not S3's limit but the test server's: s3rver keeps each object in a file
# named after its key's last part plus a suffix, too long for its disk when
# the name is 255 bytes (it answers 500).  S3 itself takes such keys.
_S3RVER_NAME = ("s3rver, the S3 server of the tests, stores an object as a file named after "
                "the key plus a suffix: a 255-byte name is past its disk's limit (S3 takes it)")

# WebDAV (RFC 4918) has files and collections only, one name per
# resource.  Checked by webdav_posix.sh instead.
_DAV_NO_SYMLINKS = ("WebDAV has no symbolic links: symlink() is refused with EPERM")
_DAV_NO_SPECIAL = ("WebDAV has no FIFOs, sockets or device nodes: mknod() is refused "
                   "with EPERM")
_DAV_NO_HARD_LINKS = ("WebDAV has no hard links: a resource has one URL, so link() is "
                      "refused with EPERM")
_WEBDAV = {}
for _label in ("symlink ln -> f2", "symlink ln again", "symlink dangling -> nowhere",
               "symlink hs -> h2", "link the symlink hs hs2", "symlink pj/l -> f",
               "symlink over a directory", "symlink with a 1000-byte target",
               "symlink pa/ln", "rmdir a symlink to a directory", "mkdir over a symlink",
               "truncate through a symlink", "open O_CREAT|O_EXCL on a symlink",
               "open a symlink O_NOFOLLOW", "open O_CREAT through a dangling symlink"):
    _WEBDAV[_label] = _DAV_NO_SYMLINKS
for _label in ("mkfifo fifo", "mkfifo fifo again", "mknod socket", "mknod chardev 1:3",
               "mknod blockdev 7:200", "nobody: mkfifo in the sticky directory"):
    _WEBDAV[_label] = _DAV_NO_SPECIAL
for _label in ("link h1 h2", "link h1 h2 again", "link h1 hd/h3",
               "link h5 while it is written (open since its create)"):
    _WEBDAV[_label] = _DAV_NO_HARD_LINKS
_WEBDAV["path past PATH_MAX: mkdir, files, fifo, symlink, rmdir"] = (
    "the script makes a FIFO and a symlink there, which WebDAV has not")
_WEBDAV["path past PATH_MAX: hard link"] = _DAV_NO_HARD_LINKS
# SFTP version 3, the one OpenSSH speaks, and what it leaves out.
_SFTP_NO_HARD_LINKS = ("SFTP v3 reports no link count or inode number, so skyfs cannot show "
                       "two names as one file: link() is refused with EPERM")
_SFTP_NO_NODES = ("SFTP cannot create FIFOs, sockets or device nodes: mknod() is refused "
                  "with EPERM (ones made on the server are listed with their kinds)")
_SFTP_NO_XATTRS = "SFTP has no extended attributes: the xattr calls answer ENOTSUP"
_SFTP_SECONDS = ("SFTP v3 carries times as whole seconds since 1970 in 32 bits: nanoseconds "
                 "are dropped, times before 1970 cannot be set, and a time set within the "
                 "same second looks unchanged")
_SFTP_PATH_MAX = ("SFTP names files by whole paths, which the server's system calls take up "
                  "to PATH_MAX bytes")
_SFTP = {
    "link h1 h2": _SFTP_NO_HARD_LINKS,
    "link h1 h2 again": _SFTP_NO_HARD_LINKS,
    "link h1 hd/h3": _SFTP_NO_HARD_LINKS,
    "link the symlink hs hs2": _SFTP_NO_HARD_LINKS,
    "link h5 while it is written (open since its create)": _SFTP_NO_HARD_LINKS,
    "path past PATH_MAX: hard link": _SFTP_PATH_MAX,
    "path past PATH_MAX: mkdir, files, fifo, symlink, rmdir": _SFTP_PATH_MAX,
    "mkfifo fifo": _SFTP_NO_NODES,
    "mkfifo fifo again": _SFTP_NO_NODES,
    "mknod socket": _SFTP_NO_NODES,
    "mknod chardev 1:3": _SFTP_NO_NODES,
    "mknod blockdev 7:200": _SFTP_NO_NODES,
    "nobody: mkfifo in the sticky directory": _SFTP_NO_NODES,
    "setxattr user.color": _SFTP_NO_XATTRS,
    "getxattr user.color": _SFTP_NO_XATTRS,
    "setxattr user.size": _SFTP_NO_XATTRS,
    "setxattr user.color (replace)": _SFTP_NO_XATTRS,
    "setxattr user.color CREATE (exists)": _SFTP_NO_XATTRS,
    "setxattr user.new REPLACE (missing)": _SFTP_NO_XATTRS,
    "listxattr f2": _SFTP_NO_XATTRS,
    "getxattr user.missing": _SFTP_NO_XATTRS,
    "removexattr user.size": _SFTP_NO_XATTRS,
    "removexattr user.size again": _SFTP_NO_XATTRS,
    "setxattr on dir modes": _SFTP_NO_XATTRS,
    "getxattr on dir modes": _SFTP_NO_XATTRS,
    "getxattr after rename": _SFTP_NO_XATTRS,
    "setxattr t1 user.tag": _SFTP_NO_XATTRS,
    "  times of t1 after setxattr t1 user.tag": _SFTP_NO_XATTRS,
    "removexattr t1 user.tag": _SFTP_NO_XATTRS,
    "  times of t1 after removexattr t1 user.tag": _SFTP_NO_XATTRS,
    "setxattr kp/f user.k": _SFTP_NO_XATTRS,
    "stat f2": _SFTP_SECONDS,
    "  times of t1 after chmod t1 0640": _SFTP_SECONDS,
    "  times of t2 after touch -a t2": _SFTP_SECONDS,
    "  times of t2 after touch -m t2": _SFTP_SECONDS,
    "atime and mtime of t2 as given": _SFTP_SECONDS,
    "times of kp/g after a pause": _SFTP_SECONDS,
    "stat pj/f": _SFTP_SECONDS,
}

KNOWN_DIFFERENCES = {
    "local": {},
    "s3": dict(_OBJECT_STORES, **{
        "create a 255-byte name": _S3RVER_NAME,
        "unlink the 255-byte name": _S3RVER_NAME,
    }),
    "azure": dict(_OBJECT_STORES),
    # GCS names are at most 1024 bytes too; its tests run on s3rver.
    "gcs": dict(_OBJECT_STORES, **{
        "create a 255-byte name": _S3RVER_NAME,
        "unlink the 255-byte name": _S3RVER_NAME,
    }),
    "swift": dict(_OBJECT_STORES, **{
        "path past PATH_MAX: mkdir, files, fifo, symlink, rmdir":
            "Swift object names are at most 1024 bytes (max_object_name_length), far less "
            "than a path past PATH_MAX",
        "path past PATH_MAX: hard link":
            "Swift object names are at most 1024 bytes (max_object_name_length), far less "
            "than a path past PATH_MAX",
    }),
    "webdav": dict(_WEBDAV),
    "sftp": dict(_SFTP),
}
