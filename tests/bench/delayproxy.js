// delayproxy.js - a benchmark tool: a TCP proxy on 127.0.0.1 that adds a
// fixed delay to each direction (a real network's round trip) and counts
// what the FUSE clients send and receive, so that tests/bench/workloads.sh
// can report bytes and requests per workload.  Used only by the benchmarks;
// it checks nothing and is not a server of any protocol.
//
//     node delayproxy.js LISTEN_PORT TARGET_PORT DELAY_MS STATS_FILE
//
// Every chunk is forwarded DELAY_MS after it arrived, in order.  STATS_FILE
// is rewritten (at most every 100 ms) with one line:
//     requests=N sent=BYTES_TO_SERVER received=BYTES_FROM_SERVER
// where a request is an HTTP/1.x request line seen at the start of a chunk
// or after the previous request's headers (good enough for counting S3
// calls; bodies that happen to hold a request line are not expected).
'use strict';
const net = require('net');
const fs = require('fs');

const [listenPort, targetPort, delayMs, statsFile] = process.argv.slice(2);
if (!statsFile) {
    console.error('usage: node delayproxy.js LISTEN_PORT TARGET_PORT DELAY_MS STATS_FILE');
    process.exit(2);
}
const delay = Number(delayMs);
const stats = { requests: 0, sent: 0, received: 0 };
const requestLine = /(?:^|\r\n)(?:GET|PUT|POST|HEAD|DELETE|OPTIONS|PATCH) \S+ HTTP\/1\.[01]\r\n/g;
let dirty = true;

function writeStats() {
    if (!dirty) return;
    dirty = false;
    const line = `requests=${stats.requests} sent=${stats.sent} received=${stats.received}\n`;
    fs.writeFileSync(statsFile + '.tmp', line);
    fs.renameSync(statsFile + '.tmp', statsFile);
}
setInterval(writeStats, 100);
writeStats();

function later(fn) {
    if (delay > 0) setTimeout(fn, delay); else setImmediate(fn);
}

net.createServer((client) => {
    const server = net.connect(Number(targetPort), '127.0.0.1');
    client.setNoDelay(true);
    server.setNoDelay(true);
    client.on('data', (chunk) => {
        stats.sent += chunk.length;
        const m = chunk.toString('latin1').match(requestLine);
        if (m) stats.requests += m.length;
        dirty = true;
        later(() => { if (!server.destroyed) server.write(chunk); });
    });
    server.on('data', (chunk) => {
        stats.received += chunk.length;
        dirty = true;
        later(() => { if (!client.destroyed) client.write(chunk); });
    });
    client.on('end', () => later(() => server.end()));
    server.on('end', () => later(() => client.end()));
    client.on('error', () => server.destroy());
    server.on('error', () => client.destroy());
    client.on('close', () => later(() => server.destroy()));
    server.on('close', () => later(() => client.destroy()));
}).listen(Number(listenPort), '127.0.0.1');
process.on('SIGTERM', () => { dirty = true; writeStats(); process.exit(0); });
