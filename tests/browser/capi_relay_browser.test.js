'use strict';
// Drives deploy/browser/capi-relay.js in headless Chromium. The page is served from one loopback
// origin (the store), the relay listens on another, so the CORS paths are really exercised; a
// third origin is one the relay refuses.
//
// Relay: a stub implementing contract §3's browser-facing behaviour (relay.js), or a running
// capi-relay when CAPI_RELAY_INGEST_URL and CAPI_RELAY_ADMIN_URL are set; then its config must
// have ingest_keys [CAPI_RELAY_INGEST_KEY or "public-key"], cors_origins
// ["http://127.0.0.1:$CAPI_RELAY_TEST_ALLOWED_PORT"] and conversions for "purchase" and "signup"
// (tests/browser/run.sh --real writes such a config and starts the relay).
const test = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const fs = require('node:fs');
const path = require('node:path');
const { Browser } = require('./cdp');
const { relayFromEnv, pollUntil } = require('./relay');

const SNIPPET = path.join(__dirname, '..', '..', 'deploy', 'browser', 'capi-relay.js');
const KEY = process.env.CAPI_RELAY_INGEST_KEY || 'public-key';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>store</title>
<link rel="icon" href="data:,">
<script>
  // Stand-in for LinkedIn's Insight Tag: records every call.
  window.__lintrk = [];
  window.lintrk = function (action, data) { window.__lintrk.push([action, data]); };
</script>
<script src="/capi-relay.js"></script>
</head><body><p>checkout</p></body></html>`;

function startSite(port) {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://x');
    if (url.pathname === '/capi-relay.js') {
      res.writeHead(200, { 'Content-Type': 'text/javascript', 'Cache-Control': 'no-store' });
      res.end(fs.readFileSync(SNIPPET));
    } else if (url.pathname === '/' || url.pathname === '/checkout') {
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' });
      res.end(PAGE);
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  return new Promise((resolve) => server.listen(port, '127.0.0.1', () => {
    server.origin = `http://127.0.0.1:${server.address().port}`;
    resolve(server);
  }));
}

let browser;
let relay;
let site;      // allowed origin
let refused;   // origin the relay refuses
let endpoint;  // the relay's POST /v1/events URL

test.before(async () => {
  site = await startSite(Number(process.env.CAPI_RELAY_TEST_ALLOWED_PORT || 0));
  refused = await startSite(Number(process.env.CAPI_RELAY_TEST_REFUSED_PORT || 0));
  relay = await relayFromEnv({ origins: [site.origin], keys: [KEY] }).start();
  endpoint = `${relay.ingestUrl}/v1/events`;
  browser = await Browser.launch();
});

test.after(async () => {
  if (browser) await browser.close();
  if (relay) await relay.stop();
  if (site) site.close();
  if (refused) refused.close();
});

async function openPage(origin, query = '') {
  const page = await browser.newPage();
  await page.goto(`${origin}/checkout${query}`);
  return page;
}

function init(options) {
  return `CapiRelay.init(${JSON.stringify({ endpoint, key: KEY, ...options })}) && true`;
}

function relayRequests(page) {
  return page.requests.filter((r) => r.url.startsWith(relay.ingestUrl));
}

test('without consent nothing is stored, sent or given to the Insight Tag', async () => {
  const page = await openPage(site.origin, '?li_fat_id=fat-noconsent');
  try {
    await page.eval(init({ storage: 'cookie', consent: false, conversionIds: { purchase: 777 } }));
    const id = await page.eval(`CapiRelay.track('purchase', {user: {email: 'a@example.com'}})`);
    assert.equal(id, null);
    assert.equal(await page.eval('CapiRelay.liFatId()'), null);
    assert.deepEqual(await page.eval('window.__lintrk'), []);
    assert.equal(await page.eval('document.cookie'), '');
    assert.equal(await page.eval(`sessionStorage.length`), 0);

    // Granting consent later stores the click ID from the landing URL and enables sending; the
    // next event must be the only one this page ever sent to the relay.
    assert.equal(await page.eval('CapiRelay.consent(true)'), true);
    assert.equal(await page.eval('CapiRelay.liFatId()'), 'fat-noconsent');
    const sentinel = await page.eval(`CapiRelay.track('purchase', {user: {email: 'a@example.com'}})`);
    assert.match(sentinel, UUID);
    await relay.waitForEvent(sentinel);
    assert.equal(relayRequests(page).length, 1, JSON.stringify(relayRequests(page)));
    if (relay.requests) {
      const fromPage = relay.requests.filter((r) => r.body.includes('fat-noconsent'));
      assert.equal(fromPage.length, 1);
      assert.equal(JSON.parse(fromPage[0].body).eventId, sentinel);
    }

    // Withdrawing consent deletes the cookie and stops sending again.
    await page.eval('CapiRelay.consent(false)');
    assert.equal(await page.eval('document.cookie'), '');
    assert.equal(await page.eval(`CapiRelay.track('purchase', {user: {email: 'a@example.com'}})`), null);
    assert.equal(relayRequests(page).length, 1);
  } finally {
    await page.close();
  }
});

test('beacon: the relay gets the same event IDs as the Insight Tag, with li_fat_id', async () => {
  const page = await openPage(site.origin, '?li_fat_id=fat-beacon&utm_source=linkedin');
  try {
    await page.eval(init({ storage: 'cookie', consent: true, conversionIds: { purchase: 777 } }));
    const ids = await page.eval(`[
      CapiRelay.track('purchase', {value: {amount: '50.00', currency: 'USD'}, user: {email: 'buyer@example.com'}}),
      CapiRelay.track('purchase', {value: {amount: '12.5', currency: 'eur'}, user: {email: 'buyer@example.com'}}),
      CapiRelay.track('signup', {user: {firstName: 'Ann', lastName: 'Lee'}})
    ]`);
    ids.forEach((id) => assert.match(id, UUID));
    assert.equal(new Set(ids).size, 3, 'one fresh ID per conversion');

    // The tag only hears about events with a conversion id, each with the ID the relay gets.
    const lintrk = await page.eval('window.__lintrk');
    assert.deepEqual(lintrk, [
      ['track', { conversion_id: 777, event_id: ids[0] }],
      ['track', { conversion_id: 777, event_id: ids[1] }],
    ]);
    for (const id of ids) await relay.waitForEvent(id);

    const sent = relayRequests(page);
    assert.equal(sent.length, 3);
    sent.forEach((r) => {
      assert.equal(r.method, 'POST');
      assert.equal(r.type, 'Ping', 'sent with navigator.sendBeacon');
      assert.equal(new URL(r.url).searchParams.get('key'), KEY);
    });

    if (relay.requests) {
      const first = relay.accepted.get(ids[0]);
      assert.equal(first.event, 'purchase');
      assert.deepEqual(first.value, { amount: '50.00', currency: 'USD' });
      assert.deepEqual(first.user, { email: 'buyer@example.com', liFatId: 'fat-beacon' });
      assert.ok(Math.abs(first.timestamp - Date.now()) < 60000);
      const posts = relay.requests.filter((r) => ids.some((id) => r.body.includes(id)));
      posts.forEach((r) => {
        assert.match(r.contentType, /^text\/plain/i);
        assert.equal(r.origin, site.origin);
        assert.equal(r.status, 202);
      });
    }

    // li_fat_id kept for 90 days as a first-party cookie, SameSite=Lax (not Secure on http).
    const cookie = (await page.cookies()).find((c) => c.name === 'li_fat_id');
    assert.ok(cookie, 'li_fat_id cookie set');
    assert.equal(cookie.value, 'fat-beacon');
    assert.equal(cookie.sameSite, 'Lax');
    assert.equal(cookie.path, '/');
    assert.equal(cookie.secure, false);
    const days = (cookie.expires - Date.now() / 1000) / 86400;
    assert.ok(days > 89.9 && days <= 90, `expires in ${days} days`);

    // A page view without the query parameter still finds it (in a later page of the visit).
    await page.goto(`${site.origin}/checkout`);
    await page.eval(init({ storage: 'cookie', consent: true }));
    assert.equal(await page.eval('CapiRelay.liFatId()'), 'fat-beacon');
  } finally {
    await page.close();
  }
});

test('fetch fallback: CORS preflight for JSON + Authorization, then the event is accepted', async () => {
  const page = await openPage(site.origin, '?li_fat_id=fat-fetch');
  try {
    await page.eval(init({ storage: 'none', consent: true, conversionIds: { purchase: 777 } }));
    // A full beacon queue makes sendBeacon return false: the snippet must fall back to fetch.
    await page.eval('navigator.sendBeacon = function () { return false; }; true');
    const id = await page.eval(`CapiRelay.track('purchase', {value: {amount: 9.99, currency: 'USD'}, user: {email: 'f@example.com'}})`);
    assert.match(id, UUID);
    assert.deepEqual(await page.eval('window.__lintrk'), [['track', { conversion_id: 777, event_id: id }]]);
    await relay.waitForEvent(id);

    const sent = relayRequests(page).filter((r) => r.method === 'POST');
    assert.equal(sent.length, 1);
    assert.equal(sent[0].type, 'Fetch');
    assert.equal(new URL(sent[0].url).search, '', 'the key travels in the Authorization header');
    // The browser only sends the POST after a successful preflight, and the page could read
    // the 202 (Access-Control-Allow-Origin matched): no CORS failure, no warning.
    await pollUntil(() => sent[0].done, 'the fetch to complete');
    assert.equal(sent[0].done, 'finished', `fetch failed: ${sent[0].error}`);
    assert.equal(sent[0].status, 202);
    assert.deepEqual(page.console.filter((m) => m.type === 'warning'), []);

    if (relay.requests) {
      const preflight = relay.requests.find((r) => r.method === 'OPTIONS' && r.origin === site.origin);
      assert.ok(preflight, 'a preflight reached the relay');
      assert.equal(preflight.status, 204);
      const asked = preflight.acrh.toLowerCase().split(',').map((h) => h.trim()).sort();
      assert.deepEqual(asked, ['authorization', 'content-type']);
      const post = relay.requests.find((r) => r.method === 'POST' && r.body.includes(id));
      assert.equal(post.authorization, `Bearer ${KEY}`);
      assert.match(post.contentType, /^application\/json/);
      assert.deepEqual(relay.accepted.get(id).user, { email: 'f@example.com', liFatId: 'fat-fetch' });
    }
    // storage 'none': nothing kept in the browser, the store reads the ID from the API.
    assert.equal(await page.eval('document.cookie'), '');
    assert.equal(await page.eval('sessionStorage.length'), 0);
    assert.equal(await page.eval('CapiRelay.liFatId()'), 'fat-fetch');
  } finally {
    await page.close();
  }
});

test('a page on a refused origin gets no event accepted (beacon and fetch)', async () => {
  const page = await openPage(refused.origin, '?li_fat_id=fat-refused');
  try {
    const base403 = await relay.countStatus(403);
    await page.eval(init({ storage: 'cookie', consent: true }));
    const viaBeacon = await page.eval(`CapiRelay.track('purchase', {user: {email: 'r@example.com'}})`);
    assert.match(viaBeacon, UUID);
    await page.eval('navigator.sendBeacon = function () { return false; }; true');
    const viaFetch = await page.eval(`CapiRelay.track('purchase', {user: {email: 'r@example.com'}})`);
    assert.match(viaFetch, UUID);

    // The fetch fails CORS (preflight refused): the snippet says so on the console.
    await pollUntil(() => page.console.some((m) => m.type === 'warning' && m.text.includes('send failed')),
      'the fetch failure warning');
    // The beacon is answered 403 (and the refused preflight too, by the stub).
    await pollUntil(async () => (await relay.countStatus(403)) - base403 >= 1, 'a 403 from the relay');

    assert.equal(await relay.eventKnown(viaBeacon), false);
    assert.equal(await relay.eventKnown(viaFetch), false);
    if (relay.requests) {
      const fromRefused = relay.requests.filter((r) => r.origin === refused.origin);
      assert.ok(fromRefused.length >= 2);
      fromRefused.forEach((r) => assert.equal(r.status, 403));
      assert.ok(!fromRefused.some((r) => r.method === 'POST' && r.body.includes(viaFetch)),
        'the fetch POST must not be sent after a refused preflight');
    }
  } finally {
    await page.close();
  }
});

test('storage modes and existing cookies', async () => {
  // session: sessionStorage only.
  let page = await openPage(site.origin, '?li_fat_id=fat-session');
  try {
    await page.eval(init({ storage: 'session', consent: true }));
    assert.equal(await page.eval(`sessionStorage.getItem('li_fat_id')`), 'fat-session');
    assert.equal(await page.eval('document.cookie'), '');
    await page.goto(`${site.origin}/checkout`);
    await page.eval(init({ storage: 'session', consent: true }));
    assert.equal(await page.eval('CapiRelay.liFatId()'), 'fat-session');
  } finally {
    await page.close();
  }

  // An Insight Tag cookie named _li_fat_id is read (and sent), without a query parameter.
  page = await openPage(site.origin);
  try {
    await page.eval(`document.cookie = '_li_fat_id=fat-from-tag; Path=/'; true`);
    await page.eval(init({ storage: 'cookie', consent: true }));
    assert.equal(await page.eval('CapiRelay.liFatId()'), 'fat-from-tag');
    const id = await page.eval(`CapiRelay.track('purchase', {eventId: 'order-1001-${Date.now()}', user: {email: 'c@example.com'}})`);
    assert.match(id, /^order-1001-/, 'a caller-given eventId is kept');
    await relay.waitForEvent(id);
    if (relay.requests) assert.equal(relay.accepted.get(id).user.liFatId, 'fat-from-tag');
    // An eventId the relay would reject is refused in the page.
    assert.equal(await page.eval(`CapiRelay.track('purchase', {eventId: '${'x'.repeat(65)}'})`), null);
  } finally {
    await page.close();
  }
});
