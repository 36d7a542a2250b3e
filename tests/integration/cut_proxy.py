#!/usr/bin/env python3
"""cut_proxy.py - an HTTP proxy on 127.0.0.1 that breaks some downloads.

    cut_proxy.py LISTEN_PORT UPSTREAM_PORT COUNT_FILE

Forwards every request, headers untouched (so signatures stay valid), to
127.0.0.1:UPSTREAM_PORT, one upstream connection per request.  A ranged GET
answered 206 is cut the first, third, fifth... time its path and range are
asked: the status line and headers (with the full Content-Length) and the
first half of the body go out, then the client's connection is closed.  So
every download breaks once, and only a client that retries it at once
(and takes the bytes again from the start of the range) ever gets it;
asking anew later breaks again.  COUNT_FILE holds the number of responses
cut so far.  Used by s3_broken_reads.sh.
"""
import http.client
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LISTEN, UPSTREAM, COUNT_FILE = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
lock = threading.Lock()
asked = {}              # (path, range) -> times asked
cuts = [0]


def should_cut(key):
    with lock:
        asked[key] = asked.get(key, 0) + 1
        if asked[key] % 2 == 0:
            return False
        cuts[0] += 1
        with open(COUNT_FILE, "w") as f:
            f.write("%d\n" % cuts[0])
        return True


class Handler(BaseHTTPRequestHandler):
    disable_nagle_algorithm = True  # replies go out at once, as from a real server
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def forward(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        up = http.client.HTTPConnection("127.0.0.1", UPSTREAM, timeout=60)
        up.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
        for name, value in self.headers.items():
            up.putheader(name, value)
        up.endheaders(body)
        resp = up.getresponse()
        data = resp.read()
        headers = [(k, v) for k, v in resp.getheaders()
                   if k.lower() not in ("transfer-encoding", "connection")]
        up.close()
        cut = (self.command == "GET" and "Range" in self.headers and resp.status == 206
               and len(data) > 1 and should_cut((self.path, self.headers["Range"])))
        self.send_response_only(resp.status, resp.reason)
        has_length = any(k.lower() == "content-length" for k, _ in headers)
        for k, v in headers:
            self.send_header(k, v)
        if not has_length and self.command != "HEAD":
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if cut:
            self.wfile.write(data[:len(data) // 2])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = forward


def main():
    with open(COUNT_FILE, "w") as f:
        f.write("0\n")
    server = ThreadingHTTPServer(("127.0.0.1", LISTEN), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
