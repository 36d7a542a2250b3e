#!/usr/bin/env python3
"""liveness_proxy.py - an HTTP proxy on 127.0.0.1 that can hang, stall or drop.

    liveness_proxy.py LISTEN_PORT UPSTREAM_PORT MODE_FILE COUNT_FILE

Each request is handled by what MODE_FILE says when it arrives (a missing
or empty file means forward):

    forward   pass it to 127.0.0.1:UPSTREAM_PORT, headers untouched (so
              signatures stay valid), one upstream connection per request
    hang      read the request and never answer (the connection stays open
              until the client gives up)
    drop      close the connection at once, without an answer (a server
              that cannot be reached, as the client sees it)
    gate      hold the request until MODE_FILE says something else, then
              handle it as that says (a server slower than any bound a test
              could name, with no timing in the test)

COUNT_FILE holds the number of requests that arrived so far, and
COUNT_FILE.requests their lines ("GET /bucket/key?query"), one a line.  Used by the
liveness_*.sh tests: the client's defence is what they check, not HTTP.
"""
import http.client
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LISTEN, UPSTREAM = int(sys.argv[1]), int(sys.argv[2])
MODE_FILE, COUNT_FILE = sys.argv[3], sys.argv[4]
lock = threading.Lock()
count = [0]


def mode():
    try:
        with open(MODE_FILE) as f:
            return f.read().strip() or "forward"
    except OSError:
        return "forward"


def counted(line):
    with lock:
        count[0] += 1
        with open(COUNT_FILE + ".requests", "a") as f:
            f.write(line + "\n")
        with open(COUNT_FILE, "w") as f:
            f.write("%d\n" % count[0])


class Handler(BaseHTTPRequestHandler):
    disable_nagle_algorithm = True  # replies go out at once, as from a real server
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def handle_one(self):
        counted("%s %s" % (self.command, self.path))
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        m = mode()
        while m == "gate":
            time.sleep(0.1)
            m = mode()
        if m == "hang":
            while True:
                time.sleep(3600)
        if m == "drop":
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
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
        self.send_response_only(resp.status, resp.reason)
        for k, v in headers:
            self.send_header(k, v)
        if not any(k.lower() == "content-length" for k, _ in headers) and \
                self.command != "HEAD":
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_one


def main():
    with open(COUNT_FILE + ".requests", "w"):
        pass
    with open(COUNT_FILE, "w") as f:
        f.write("0\n")
    server = ThreadingHTTPServer(("127.0.0.1", LISTEN), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
