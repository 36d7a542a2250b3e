#!/usr/bin/env node
// gcs_token_server.js - an OAuth2 token endpoint and a Bearer-checking
// storage front, on 127.0.0.1, for the gcs token tests (gcs_auth.sh).
//
//   node gcs_token_server.js CONFIG.json
//
// CONFIG holds: token_port, front_port, upstream (s3rver's URL),
// public_key_file (PEM of the service account's key), client_email,
// client_id, client_secret, refresh_token, token_ttl (seconds), log (file).
//
// POST http://127.0.0.1:token_port/token answers what Google's endpoint
// answers, and only after checking what skyfs sent:
//   - grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer: the JWT's
//     RS256 signature against the public key (crypto.verify), its header
//     (alg RS256), its claims (iss = client_email, aud = this endpoint's
//     URL, a devstorage scope, iat not in the future, exp after now and at
//     most an hour after iat);
//   - grant_type=refresh_token: client_id, client_secret and refresh_token.
// A good request gets {"access_token", "expires_in": token_ttl,
// "token_type": "Bearer"}; a bad one 400 {"error", "error_description"}.
//
// Every other request goes to the front port, which stands for GCS's
// storage endpoint: it demands "Authorization: Bearer T" with a T this
// server issued and that has not expired (else 401), then forwards the
// request to s3rver without the Authorization header, with GCS's x-goog-*
// header names turned into the x-amz-* names s3rver knows.  The front
// checks skyfs's authentication; s3rver does the storage.
//
// The log gets one line per event: "issued KIND TOKEN", "refused WHY",
// "front KIND METHOD PATH goog-meta=NAMES" (KIND: sa or user, from the
// token; NAMES: the x-goog-meta-* headers the request carried),
// "front-refused WHY".
'use strict';
const crypto = require('crypto');
const fs = require('fs');
const http = require('http');

const cfg = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const publicKey = crypto.createPublicKey(fs.readFileSync(cfg.public_key_file, 'utf8'));
const tokenUrl = `http://127.0.0.1:${cfg.token_port}/token`;
const tokens = new Map();   // token -> { kind, expires (ms) }
let serial = 0;

function log(line) {
  fs.appendFileSync(cfg.log, line + '\n');
}

function b64urlDecode(s) {
  return Buffer.from(s.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
}

function reply(res, status, obj) {
  const body = JSON.stringify(obj);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': body.length });
  res.end(body);
}

function refuse(res, error, why) {
  log(`refused ${why}`);
  reply(res, 400, { error, error_description: why });
}

function issue(res, kind) {
  serial += 1;
  const token = `ya29.test-${kind}-${serial}-${crypto.randomBytes(6).toString('hex')}`;
  tokens.set(token, { kind, expires: Date.now() + cfg.token_ttl * 1000 });
  log(`issued ${kind} ${token}`);
  reply(res, 200, { access_token: token, expires_in: cfg.token_ttl, token_type: 'Bearer' });
}

function checkJwt(jwt) {
  const parts = (jwt || '').split('.');
  if (parts.length !== 3) return 'not a JWT';
  let header, claims;
  try {
    header = JSON.parse(b64urlDecode(parts[0]).toString('utf8'));
    claims = JSON.parse(b64urlDecode(parts[1]).toString('utf8'));
  } catch (err) {
    return 'JWT parts are not JSON';
  }
  if (header.alg !== 'RS256') return `alg ${header.alg}`;
  const ok = crypto.verify('RSA-SHA256', Buffer.from(`${parts[0]}.${parts[1]}`), publicKey,
                           b64urlDecode(parts[2]));
  if (!ok) return 'Invalid JWT Signature.';
  const now = Math.floor(Date.now() / 1000);
  if (claims.iss !== cfg.client_email) return `iss ${claims.iss}`;
  if (claims.aud !== tokenUrl) return `aud ${claims.aud}`;
  if (typeof claims.scope !== 'string' || !claims.scope.includes('auth/devstorage.'))
    return `scope ${claims.scope}`;
  if (typeof claims.iat !== 'number' || claims.iat > now + 60) return 'iat in the future';
  if (typeof claims.exp !== 'number' || claims.exp <= now) return 'JWT expired';
  if (claims.exp - claims.iat > 3600) return 'JWT lives more than an hour';
  return null;
}

const tokenServer = http.createServer((req, res) => {
  let body = '';
  req.on('data', (c) => { body += c; });
  req.on('end', () => {
    if (req.method !== 'POST' || req.url !== '/token')
      return reply(res, 404, { error: 'not_found' });
    if (!/^application\/x-www-form-urlencoded/.test(req.headers['content-type'] || ''))
      return refuse(res, 'invalid_request', 'not a form');
    const form = new URLSearchParams(body);
    const grant = form.get('grant_type');
    if (grant === 'urn:ietf:params:oauth:grant-type:jwt-bearer') {
      const why = checkJwt(form.get('assertion'));
      return why ? refuse(res, 'invalid_grant', why) : issue(res, 'sa');
    }
    if (grant === 'refresh_token') {
      if (form.get('client_id') !== cfg.client_id ||
          form.get('client_secret') !== cfg.client_secret)
        return refuse(res, 'invalid_client', 'wrong client');
      if (form.get('refresh_token') !== cfg.refresh_token)
        return refuse(res, 'invalid_grant', 'Bad Request');
      return issue(res, 'user');
    }
    return refuse(res, 'unsupported_grant_type', `grant ${grant}`);
  });
});

const upstream = new URL(cfg.upstream);

const front = http.createServer((req, res) => {
  const auth = req.headers.authorization || '';
  const m = /^Bearer (\S+)$/.exec(auth);
  const t = m && tokens.get(m[1]);
  let why = null;
  if (!m) why = auth ? 'not a Bearer token' : 'no Authorization';
  else if (!t) why = 'unknown token';
  else if (t.expires <= Date.now()) why = 'expired token';
  if (why) {
    log(`front-refused ${why}`);
    req.resume();
    const body = `<?xml version='1.0' encoding='UTF-8'?><Error><Code>AuthenticationRequired</Code><Message>${why}</Message></Error>`;
    res.writeHead(401, { 'Content-Type': 'application/xml', 'Content-Length': body.length });
    return res.end(body);
  }
  const goog = Object.keys(req.headers).filter((n) => n.startsWith('x-goog-meta-'))
    .map((n) => n.slice(12)).sort().join(',');
  log(`front ${t.kind} ${req.method} ${req.url} goog-meta=${goog}`);
  const headers = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (name === 'authorization') continue;
    headers[name.startsWith('x-goog-') ? 'x-amz-' + name.slice(7) : name] = value;
  }
  headers.host = upstream.host;
  const up = http.request({ host: upstream.hostname, port: upstream.port, method: req.method,
                            path: req.url, headers }, (ur) => {
    res.writeHead(ur.statusCode, ur.headers);
    ur.pipe(res);
  });
  up.on('error', (err) => {
    res.writeHead(502);
    res.end(String(err));
  });
  req.pipe(up);
});

tokenServer.listen(cfg.token_port, '127.0.0.1');
front.listen(cfg.front_port, '127.0.0.1');
process.on('SIGTERM', () => process.exit(0));
