'use strict';
// The relay the browser talks to, behind one interface:
//  - StubRelay: an in-process Node HTTP server that implements the ingest side of contract §3
//    that browsers see (origin check 403, key 401, size 413, type 415, CORS preflight with
//    Vary: Origin, 202 with {accepted, duplicates, rejected}), and records every request.
//  - RealRelay: a running capi-relay (env CAPI_RELAY_INGEST_URL and CAPI_RELAY_ADMIN_URL), checked
//    through GET /v1/events/{eventId} and /metrics on its admin listener.
// Both expose: ingestUrl, eventKnown(id), waitForEvent(id), requestCount(), countStatus(code);
// the stub also keeps a log of every request (`requests`) and accepted event (`accepted`).
const http = require('node:http');

const MAX_BODY = 1 << 20;
const TYPES = ['application/json', 'application/x-ndjson', 'text/plain'];

function sleep(ms) { return new Promise((r) => setTimeout(r, ms)); }

async function pollUntil(check, what, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timeout waiting for ${what}`);
    await sleep(50);
  }
}

function parseEvents(text) {
  const trimmed = text.trim();
  if (trimmed === '') return null;
  try {
    const v = JSON.parse(trimmed);
    if (Array.isArray(v)) return v.length ? v : null;
    if (v && typeof v === 'object') return [v];
  } catch (e) { /* not one JSON value: read as NDJSON below */ }
  const events = [];
  text.split('\n').forEach((line, index) => {
    if (line.trim() === '') return;
    try { events.push(JSON.parse(line)); } catch (e) { events.push({ __invalid: index }); }
  });
  return events.length ? events : null;
}

class StubRelay {
  constructor({ origins, keys }) {
    this.origins = origins;      // exact origins allowed; ['*'] allows any
    this.keys = keys;            // empty: no key needed
    this.requests = [];          // {method, url, origin, contentType, authorization, status, body, acrh}
    this.accepted = new Map();   // eventId -> event
    this.server = http.createServer((req, res) => this.handle(req, res));
  }

  async start() {
    await new Promise((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.ingestUrl = `http://127.0.0.1:${this.server.address().port}`;
    return this;
  }

  stop() { return new Promise((resolve) => this.server.close(resolve)); }

  originAllowed(origin) {
    return this.origins.includes('*') || this.origins.includes(origin);
  }

  handle(req, res) {
    const chunks = [];
    let size = 0;
    req.on('data', (c) => { size += c.length; if (size <= MAX_BODY) chunks.push(c); });
    req.on('end', () => {
      const url = new URL(req.url, this.ingestUrl);
      const record = {
        method: req.method, path: url.pathname, query: url.searchParams.toString(),
        origin: req.headers.origin, contentType: req.headers['content-type'],
        authorization: req.headers.authorization, acrh: req.headers['access-control-request-headers'],
        body: Buffer.concat(chunks).toString('utf8'), status: 0,
      };
      this.requests.push(record);
      const headers = { 'Content-Type': 'application/json' };
      const origin = req.headers.origin;
      const cors = this.origins.length > 0;
      if (cors) headers.Vary = 'Origin';
      const allowed = origin !== undefined && this.originAllowed(origin);
      if (allowed) headers['Access-Control-Allow-Origin'] = this.origins.includes('*') ? '*' : origin;
      const reply = (status, body) => {
        record.status = status;
        res.writeHead(status, headers);
        res.end(body === undefined ? '' : JSON.stringify(body));
      };

      if (url.pathname !== '/v1/events') return reply(404, { error: 'not_found' });
      if (req.method === 'OPTIONS') {
        if (!allowed) return reply(403, { error: 'origin_not_allowed' });
        headers['Access-Control-Allow-Methods'] = 'POST';
        headers['Access-Control-Allow-Headers'] = 'Content-Type, Authorization';
        headers['Access-Control-Max-Age'] = '600';
        delete headers['Content-Type'];
        return reply(204);
      }
      if (req.method !== 'POST') return reply(405, { error: 'method_not_allowed' });
      // Order of checks as in contract §3: origin, key, size, type.
      if (cors && !this.origins.includes('*') && origin !== undefined && !allowed) {
        return reply(403, { error: 'origin_not_allowed' });
      }
      if (this.keys.length > 0) {
        const auth = req.headers.authorization || '';
        const key = auth.startsWith('Bearer ') ? auth.slice(7) : url.searchParams.get('key');
        if (!this.keys.includes(key)) return reply(401, { error: 'unauthorized' });
      }
      if (size > MAX_BODY) return reply(413, { error: 'too_large' });
      const type = (req.headers['content-type'] || 'text/plain').split(';')[0].trim().toLowerCase();
      if (!TYPES.includes(type)) return reply(415, { error: 'unsupported_media_type' });
      const events = parseEvents(record.body);
      if (!events) return reply(400, { error: 'invalid_json', accepted: 0, duplicates: 0, rejected: [] });
      let accepted = 0;
      let duplicates = 0;
      const rejected = [];
      events.forEach((e, index) => {
        if (e.__invalid !== undefined) return rejected.push({ index: e.__invalid, error: 'invalid_json' });
        if (!e || typeof e !== 'object' || !e.event) return rejected.push({ index, error: 'bad_event' });
        if (e.consent === false) return rejected.push({ index, error: 'no_consent' });
        const id = e.eventId || `derived-${this.accepted.size}`;
        if (this.accepted.has(id)) { duplicates++; return undefined; }
        this.accepted.set(id, e);
        accepted++;
        return undefined;
      });
      const status = accepted + duplicates > 0 ? 202 : 400;
      return reply(status, { accepted, duplicates, rejected });
    });
  }

  async eventKnown(id) { return this.accepted.has(id); }

  waitForEvent(id) { return pollUntil(() => this.accepted.get(id), `event ${id} at the stub relay`); }

  async requestCount() { return this.requests.length; }

  async countStatus(status) { return this.requests.filter((r) => r.status === status).length; }
}

class RealRelay {
  constructor({ ingestUrl, adminUrl }) {
    this.ingestUrl = ingestUrl.replace(/\/+$/, '');
    this.adminUrl = adminUrl.replace(/\/+$/, '');
  }

  async start() { return this; }

  async stop() {}

  async eventKnown(id) {
    const r = await fetch(`${this.adminUrl}/v1/events/${encodeURIComponent(id)}`);
    await r.arrayBuffer();
    if (r.status !== 200 && r.status !== 404) throw new Error(`GET /v1/events/{id}: ${r.status}`);
    return r.status === 200;
  }

  waitForEvent(id) { return pollUntil(() => this.eventKnown(id), `event ${id} at the relay`); }

  async metric(name, labelFilter = () => true) {
    const text = await (await fetch(`${this.adminUrl}/metrics`)).text();
    let sum = 0;
    for (const line of text.split('\n')) {
      if (!line.startsWith(name)) continue;
      const m = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?\s+(\S+)/);
      if (!m || m[1] !== name || !labelFilter(m[3] || '')) continue;
      sum += Number(m[4]);
    }
    return sum;
  }

  async requestCount() { return this.metric('capi_relay_ingest_requests_total'); }

  async countStatus(status) {
    return this.metric('capi_relay_ingest_requests_total', (labels) => labels.includes(`code="${status}"`));
  }
}

function relayFromEnv({ origins, keys }) {
  if (process.env.CAPI_RELAY_INGEST_URL) {
    if (!process.env.CAPI_RELAY_ADMIN_URL) {
      throw new Error('CAPI_RELAY_INGEST_URL needs CAPI_RELAY_ADMIN_URL (to look events up)');
    }
    return new RealRelay({ ingestUrl: process.env.CAPI_RELAY_INGEST_URL, adminUrl: process.env.CAPI_RELAY_ADMIN_URL });
  }
  return new StubRelay({ origins, keys });
}

module.exports = { StubRelay, RealRelay, relayFromEnv, pollUntil };
