#!/usr/bin/env python3
"""listing_proxy.py - an HTTP proxy on 127.0.0.1 that adds bad entries to
listings, as a broken or hostile server could send them.

    listing_proxy.py LISTEN_PORT UPSTREAM_PORT s3|azure FRAGMENTS_FILE [REQUEST_LOG]

Forwards every request, headers untouched (so signatures stay valid), to
127.0.0.1:UPSTREAM_PORT.  A listing of a prefix named in FRAGMENTS_FILE
gets that prefix's XML fragment (raw bytes: it may hold bytes that are not
UTF-8) added to its entries: on S3 (a ListObjectsV2 GET, `prefix=P`)
before </ListBucketResult>, with <EncodingType>url</EncodingType> when the
request asked for it (s3rver ignores encoding-type; AWS answers so); on
Azure (List Blobs, `prefix=P`) before </Blobs>.  So a test checks what
skyfs does with keys that s3rver and Azurite refuse to store (a NUL byte,
bytes that are not UTF-8, a size no file has).

FRAGMENTS_FILE: sections, each a line "== PREFIX" then the fragment bytes
up to the next such line (an empty file changes nothing).  REQUEST_LOG, when
given, gets one line "METHOD PATH" per request, written before the request
is forwarded, so a test can count the requests skyfs sent.  Used by
names_s3.sh, names_azure.sh and s3_symlinks_remount.sh.
"""
import http.client
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LISTEN, UPSTREAM, KIND, FRAGMENTS = (int(sys.argv[1]), int(sys.argv[2]), sys.argv[3],
                                     sys.argv[4])
REQUEST_LOG = sys.argv[5] if len(sys.argv) > 5 else None
log_lock = threading.Lock()


def load_fragments(path):
    sections, prefix = {}, None
    with open(path, "rb") as f:
        for line in f.read().split(b"\n"):
            if line.startswith(b"== "):
                prefix = line[3:].decode()
                sections[prefix] = b""
            elif prefix is not None:
                sections[prefix] += line
    return sections


SECTIONS = load_fragments(FRAGMENTS)


def rewrite(query, body):
    q = urllib.parse.parse_qs(query, keep_blank_values=True)
    prefix = q.get("prefix", [""])[0]
    fragment = SECTIONS.get(prefix)
    if fragment is None:
        return body
    if KIND == "s3" and q.get("list-type") == ["2"]:
        end = b"</ListBucketResult>"
        if q.get("encoding-type") == ["url"] and b"<EncodingType>" not in body:
            fragment = b"<EncodingType>url</EncodingType>" + fragment
    elif KIND == "azure" and q.get("comp") == ["list"]:
        end = b"</Blobs>"
        if end not in body:                     # an empty listing: <Blobs />
            body = body.replace(b"<Blobs />", b"<Blobs></Blobs>")
    else:
        return body
    return body.replace(end, fragment + end, 1)


class Handler(BaseHTTPRequestHandler):
    disable_nagle_algorithm = True  # replies go out at once, as from a real server
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def forward(self):
        if REQUEST_LOG:
            with log_lock, open(REQUEST_LOG, "a") as f:
                f.write("%s %s\n" % (self.command, self.path))
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        up = http.client.HTTPConnection("127.0.0.1", UPSTREAM, timeout=60)
        up.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
        for name, value in self.headers.items():
            up.putheader(name, value)
        up.endheaders(body)
        resp = up.getresponse()
        data = resp.read()
        head = self.command == "HEAD"           # its Content-Length is the object's
        headers = [(k, v) for k, v in resp.getheaders()
                   if k.lower() not in ("transfer-encoding", "connection")
                   and (head or k.lower() != "content-length")]
        up.close()
        if self.command == "GET" and resp.status == 200:
            data = rewrite(urllib.parse.urlsplit(self.path).query, data)
        self.send_response_only(resp.status, resp.reason)
        for k, v in headers:
            self.send_header(k, v)
        if not head:
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = forward


def main():
    server = ThreadingHTTPServer(("127.0.0.1", LISTEN), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
