#!/usr/bin/env python3
"""fault_proxy.py - an HTTP proxy on 127.0.0.1 that misbehaves on request.

    fault_proxy.py LISTEN_PORT UPSTREAM_PORT STATE_DIR

Forwards every request, headers untouched (so signatures stay valid), to
127.0.0.1:UPSTREAM_PORT (s3rver or Azurite), one upstream connection per
request.  STATE_DIR/rules, read anew for every request, says which
requests to break; one rule a line:

    MODE METHOD PATTERN COUNT

METHOD is an HTTP method or '*'; PATTERN a substring of the request's
path and query, or '*'; COUNT how many matching requests the rule breaks
(then it is spent), or 'all'.  The first live rule that matches applies.
Modes:

    cut       forward the request (the server does it), then close the
              connection without a byte of the answer: a lost reply
    range     a 206 answer for bytes A-B goes out as bytes A+1 to B+1: its
              first byte dropped, a zero byte added at the end, and a
              Content-Range that says so: a server answering another range
              (as long as the one asked) than the one asked
    repeat    a listing answer (S3 ListObjectsV2, Azure List Blobs) says
              there is a next page, token "fault-loop"; asked for it, the
              proxy answers the same page with the same token again
    noprogress  the same, with a new token each time ("fault-loop-N")
    hang      accept the request and never answer (the connection stays
              open until the client gives up)
    cutfail:STATUS:CODE  the 1st, 3rd... matching request is cut as by
              `cut`; the 2nd, 4th... (the client's retry) is not forwarded
              but answered STATUS with error code CODE (S3 <Error><Code>,
              Azure x-ms-error-code): a retry that fails because the first
              attempt did the work (give COUNT 2)
    flip      forward the request with one byte of its body changed (the
              middle one): a body damaged on the way (skyfs's upload checks)
    flipanswer  forward the request, then answer with one byte of a 2xx
              answer's body changed (the middle one): a download damaged
              on the way (skyfs's download check)
    status:STATUS  answer STATUS (a short text body) without forwarding:
              a server failing or refusing that request (swift_faults.sh)
    run:NAME  run the program STATE_DIR/NAME, wait for it to end, then
              forward the request: another client's change made right
              before this request reaches the server (s3_rgw.sh)
    await:TEXT  hold the request until another request whose path and
              query hold TEXT has reached the proxy (before it or while it
              is held; at most AWAIT_MAX_S seconds), then forward it; the
              log says which ("await TEXT: met" or "await TEXT: timeout"):
              whether a client asks two things at once or one after the
              other (s3_stat_hints.sh).  TEXT holds no space (a rule's
              fields are split on spaces)

A listing loop ends by itself after 300 pages (the last one has no token),
so that a client without defence still gets an answer.  STATE_DIR/log gets
one line per request: "METHOD PATH?QUERY ACTION".  Used by
http_faults_s3.sh, http_faults_azure.sh, swift_faults.sh, s3_rgw.sh and
s3_stat_hints.sh.
"""
import http.client
import os
import re
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LISTEN, UPSTREAM, STATE = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
RULES = os.path.join(STATE, "rules")
LOG = os.path.join(STATE, "log")
lock = threading.Lock()
spent = {}              # rule line -> times used
loop_pages = {}         # listing path (without token) -> (body, headers, count)
LOOP_TOKEN = "fault-loop"
LOOP_MAX = 300
AWAIT_MAX_S = 5
arrived = []            # every request's path and query, in order of arrival
arrival = threading.Condition(lock)


def log(line):
    with lock:
        with open(LOG, "a") as f:
            f.write(line + "\n")


def pick_rule(method, target):
    """The mode of the first live rule matching, counted as used."""
    try:
        with open(RULES) as f:
            lines = [l.strip() for l in f if l.strip() and not l.startswith("#")]
    except FileNotFoundError:
        return None
    with lock:
        for line in lines:
            mode, m, pattern, count = line.split()
            if m != "*" and m != method:
                continue
            if pattern != "*" and pattern not in target:
                continue
            used = spent.get(line, 0)
            if count != "all" and used >= int(count):
                continue
            spent[line] = used + 1
            if mode.startswith("cutfail:"):
                return mode if used % 2 else "cut"
            return mode
    return None


def is_listing(target):
    return "list-type=2" in target or "comp=list" in target


def token_of(target):
    m = re.search(r"(?:continuation-token|marker)=([^&]*)", target)
    return m.group(1) if m else None


def with_next_token(body, token):
    """A listing body that names `token` as its next page."""
    text = body.decode("utf-8")
    if "<ListBucketResult" in text:
        text = re.sub(r"<NextContinuationToken>.*?</NextContinuationToken>", "", text)
        text = re.sub(r"<IsTruncated>\w+</IsTruncated>",
                      "<IsTruncated>true</IsTruncated><NextContinuationToken>%s"
                      "</NextContinuationToken>" % token, text)
    else:
        text = re.sub(r"<NextMarker\s*/>|<NextMarker>.*?</NextMarker>", "", text)
        text = text.replace("</EnumerationResults>",
                            "<NextMarker>%s</NextMarker></EnumerationResults>" % token)
    return text.encode("utf-8")


def without_next_token(body):
    text = body.decode("utf-8")
    text = re.sub(r"<NextContinuationToken>.*?</NextContinuationToken>", "", text)
    text = re.sub(r"<IsTruncated>\w+</IsTruncated>", "<IsTruncated>false</IsTruncated>", text)
    text = re.sub(r"<NextMarker>.*?</NextMarker>", "<NextMarker />", text)
    return text.encode("utf-8")


class Handler(BaseHTTPRequestHandler):
    disable_nagle_algorithm = True  # replies go out at once, as from a real server
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def answer(self, status, reason, headers, data):
        self.send_response_only(status, reason)
        for k, v in headers:
            if k.lower() != "content-length":
                self.send_header(k, v)
        if self.command != "HEAD" or not any(k.lower() == "content-length" for k, _ in headers):
            self.send_header("Content-Length", str(len(data)))
        else:
            self.send_header("Content-Length", dict((k.lower(), v) for k, v in headers)
                             ["content-length"])
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def upstream(self, body):
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
        return resp.status, resp.reason, headers, data

    def forward(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        target = self.path
        with lock:
            arrived.append(target)
            seen = len(arrived)
            arrival.notify_all()
        mode = pick_rule(self.command, target)
        log("%s %s %s" % (self.command, target, mode or "pass"))
        if mode and mode.startswith("await:"):
            text = mode[len("await:"):]
            deadline = time.monotonic() + AWAIT_MAX_S
            def other_came():
                return any(text in t for i, t in enumerate(arrived) if i != seen - 1)
            with lock:
                while not other_came():
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    arrival.wait(left)
                met = other_came()
            log("await %s: %s" % (text, "met" if met else "timeout"))
        if mode == "hang":
            time.sleep(3600)
            return
        if mode == "flip" and body:
            mid = len(body) // 2
            body = body[:mid] + bytes([body[mid] ^ 0x01]) + body[mid + 1:]
        if mode and mode.startswith("cutfail:"):
            _, status, code = mode.split(":")
            body = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>%s</Code>"
                    "<Message>fault_proxy</Message></Error>" % code).encode()
            self.answer(int(status), "Fault", [("Content-Type", "application/xml"),
                                               ("x-ms-error-code", code)], body)
            return
        if mode and mode.startswith("status:"):
            status = int(mode.split(":")[1])
            self.answer(status, "Fault", [("Content-Type", "text/plain")],
                        b"fault_proxy says %d" % status)
            return
        if mode and mode.startswith("run:"):
            done = subprocess.run([os.path.join(STATE, mode[4:])], stdin=subprocess.DEVNULL,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            log("run %s: exit %d" % (mode[4:], done.returncode))
        if mode in ("repeat", "noprogress") and is_listing(target):
            self.listing_loop(mode, body, target)
            return
        status, reason, headers, data = self.upstream(body)
        if mode == "cut":
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        if mode == "flipanswer" and 200 <= status < 300 and data:
            mid = len(data) // 2
            data = data[:mid] + bytes([data[mid] ^ 0x01]) + data[mid + 1:]
        if mode == "range" and status == 206 and len(data) > 1:
            hd = dict((k.lower(), v) for k, v in headers)
            m = re.match(r"bytes (\d+)-(\d+)/(\S+)", hd.get("content-range", ""))
            if m:
                first, last, total = int(m.group(1)), int(m.group(2)), m.group(3)
                headers = [(k, v) for k, v in headers if k.lower() != "content-range"]
                headers.append(("Content-Range",
                                "bytes %d-%d/%s" % (first + 1, last + 1, total)))
                data = data[1:] + b"\0"
        self.answer(status, reason, headers, data)

    def listing_loop(self, mode, body, target):
        key = re.sub(r"&?(continuation-token|marker)=[^&]*", "", target)
        token = token_of(target)
        with lock:
            page = loop_pages.get(key)
        if token is None or token == "" or page is None:
            status, reason, headers, data = self.upstream(body)
            if status != 200:
                self.answer(status, reason, headers, data)
                return
            with lock:
                loop_pages[key] = [data, headers, 0]
                page = loop_pages[key]
        with lock:
            page[2] += 1
            count = page[2]
        data, headers = page[0], page[1]
        if count >= LOOP_MAX:
            out = without_next_token(data)
        else:
            out = with_next_token(data, LOOP_TOKEN if mode == "repeat"
                                  else "%s-%d" % (LOOP_TOKEN, count))
        self.answer(200, "OK", headers, out)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = forward


def main():
    open(LOG, "w").close()
    server = ThreadingHTTPServer(("127.0.0.1", LISTEN), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
