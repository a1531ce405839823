/*! capi-relay browser snippet. No dependencies, no build step, ES2017.
 *
 * Sends conversion events from the page to a capi-relay ingest listener and gives the same
 * event ID to LinkedIn's Insight Tag (window.lintrk), so LinkedIn counts each conversion once.
 *
 *   CapiRelay.init({
 *     endpoint: '/capi-relay/v1/events', // the relay's POST /v1/events, ideally same origin
 *     key: 'public-ingest-key',          // one of server.ingest_keys (public: it is in the page)
 *     storage: 'cookie',                 // where li_fat_id is kept: 'cookie' | 'session' | 'none'
 *     consent: false,                    // nothing is stored or sent until consent(true)
 *     conversionIds: {purchase: 1234567},// event name -> Insight Tag conversion id (lintrk)
 *     transport: 'auto'                  // 'auto' (beacon, else fetch) | 'beacon' | 'fetch'
 *   });
 *   CapiRelay.consent(true);            // or false to withdraw (also deletes the stored li_fat_id)
 *   var id = CapiRelay.track('purchase', {
 *     value: {amount: '50.00', currency: 'USD'},
 *     user: {email: 'buyer@example.com'}
 *   });                                  // the event ID, or null when nothing was sent
 *   CapiRelay.liFatId();                 // the li_fat_id, or null (for the store's backend)
 *
 * See README.md next to this file.
 */
(function (global) {
  'use strict';

  var COOKIE_NAME = 'li_fat_id';
  var FOREIGN_COOKIE_NAMES = ['li_fat_id', '_li_fat_id'];  // ours / the Insight Tag's
  var SESSION_KEY = 'li_fat_id';
  var MAX_AGE_SECONDS = 90 * 24 * 3600;  // LinkedIn's attribution horizon
  var MAX_EVENT_ID = 64;                 // the relay rejects longer ids (bad_event_id)

  var state = {
    initialized: false,
    endpoint: '/capi-relay/v1/events',
    key: '',
    storage: 'cookie',
    consent: false,
    conversionIds: {},
    transport: 'auto',
    liFatId: null   // kept in memory until consent allows storing it
  };

  function warn(message) {
    if (global.console && global.console.warn) global.console.warn('[capi-relay] ' + message);
  }

  // --- event IDs ---------------------------------------------------------------------------

  function uuid4() {
    var c = global.crypto;
    if (c && typeof c.randomUUID === 'function') return c.randomUUID();
    var b = new Uint8Array(16);
    if (c && typeof c.getRandomValues === 'function') {
      c.getRandomValues(b);
    } else {
      // No Web Crypto at all (very old browsers): still unique enough for dedup keys.
      for (var i = 0; i < 16; i++) b[i] = Math.floor(Math.random() * 256);
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    var h = [];
    for (var j = 0; j < 16; j++) h.push((b[j] + 0x100).toString(16).slice(1));
    return h.slice(0, 4).join('') + '-' + h.slice(4, 6).join('') + '-' + h.slice(6, 8).join('') +
        '-' + h.slice(8, 10).join('') + '-' + h.slice(10, 16).join('');
  }

  // --- li_fat_id ---------------------------------------------------------------------------

  function readCookie(name) {
    var parts = (global.document && global.document.cookie || '').split(';');
    for (var i = 0; i < parts.length; i++) {
      var p = parts[i].replace(/^\s+/, '');
      if (p.indexOf(name + '=') === 0) {
        try { return decodeURIComponent(p.slice(name.length + 1)); } catch (e) { return null; }
      }
    }
    return null;
  }

  function writeCookie(value, maxAge) {
    var secure = global.location && global.location.protocol === 'https:' ? '; Secure' : '';
    global.document.cookie = COOKIE_NAME + '=' + encodeURIComponent(value) + '; Max-Age=' +
        maxAge + '; Path=/; SameSite=Lax' + secure;
  }

  function sessionStore() {
    try { return global.sessionStorage || null; } catch (e) { return null; }  // blocked storage
  }

  function fromUrl() {
    try {
      var v = new URL(global.location.href).searchParams.get('li_fat_id');
      return v ? v : null;
    } catch (e) {
      return null;
    }
  }

  // What the page already knows: the landing URL first (it is the newest click), then a kept value.
  function discoverLiFatId() {
    var v = fromUrl();
    if (v) return v;
    if (state.storage === 'session') {
      var s = sessionStore();
      var kept = s && s.getItem(SESSION_KEY);
      if (kept) return kept;
    }
    for (var i = 0; i < FOREIGN_COOKIE_NAMES.length; i++) {
      var c = readCookie(FOREIGN_COOKIE_NAMES[i]);
      if (c) return c;
    }
    return null;
  }

  function persistLiFatId() {
    if (!state.consent || !state.liFatId) return;
    if (state.storage === 'cookie') {
      // Only a value from the URL is (re)written: an existing cookie keeps its own expiry.
      if (readCookie(COOKIE_NAME) !== state.liFatId) writeCookie(state.liFatId, MAX_AGE_SECONDS);
    } else if (state.storage === 'session') {
      var s = sessionStore();
      if (s) s.setItem(SESSION_KEY, state.liFatId);
    }
  }

  function forgetLiFatId() {
    if (state.storage === 'cookie' && readCookie(COOKIE_NAME) !== null) writeCookie('', 0);
    var s = sessionStore();
    if (s) s.removeItem(SESSION_KEY);
  }

  // --- sending -----------------------------------------------------------------------------

  function withKey(url) {
    if (!state.key) return url;
    return url + (url.indexOf('?') >= 0 ? '&' : '?') + 'key=' + encodeURIComponent(state.key);
  }

  function sendFetch(body) {
    var headers = {'Content-Type': 'application/json'};
    if (state.key) headers.Authorization = 'Bearer ' + state.key;
    var init = {
      method: 'POST', mode: 'cors', credentials: 'omit', keepalive: true, headers: headers, body: body
    };
    return global.fetch(state.endpoint, init).catch(function () {
      // Some engines refuse keepalive for requests needing a preflight: try once without it.
      init.keepalive = false;
      return global.fetch(state.endpoint, init);
    }).then(function (response) {
      if (!response.ok) warn('relay answered ' + response.status);
      return response;
    }, function (error) {
      warn('send failed: ' + (error && error.message || error));
    });
  }

  function send(body) {
    var nav = global.navigator;
    if (state.transport !== 'fetch' && nav && typeof nav.sendBeacon === 'function') {
      // text/plain is CORS-safelisted: no preflight, and it survives page unload.
      var queued = false;
      try {
        queued = nav.sendBeacon(withKey(state.endpoint), new Blob([body], {type: 'text/plain'}));
      } catch (e) {
        queued = false;
      }
      if (queued) return 'beacon';
      if (state.transport === 'beacon') {
        warn('sendBeacon refused the event');
        return null;
      }
    }
    if (typeof global.fetch !== 'function') return null;
    sendFetch(body);
    return 'fetch';
  }

  function tellInsightTag(name, eventId) {
    var conversionId = state.conversionIds[name];
    if (conversionId === undefined || typeof global.lintrk !== 'function') return false;
    try {
      global.lintrk('track', {conversion_id: conversionId, event_id: eventId});
      return true;
    } catch (e) {
      warn('lintrk failed: ' + (e && e.message || e));
      return false;
    }
  }

  // --- public API --------------------------------------------------------------------------

  var CapiRelay = {
    version: '1.0.0',

    init: function (options) {
      var o = options || {};
      if (o.endpoint) state.endpoint = String(o.endpoint);
      if (o.key !== undefined) state.key = String(o.key || '');
      if (o.storage !== undefined) {
        if (o.storage !== 'cookie' && o.storage !== 'session' && o.storage !== 'none') {
          warn('unknown storage "' + o.storage + '", using "none"');
          state.storage = 'none';
        } else {
          state.storage = o.storage;
        }
      }
      if (o.transport === 'auto' || o.transport === 'beacon' || o.transport === 'fetch') {
        state.transport = o.transport;
      }
      if (o.conversionIds) state.conversionIds = o.conversionIds;
      if (o.consent !== undefined) state.consent = o.consent === true;
      state.initialized = true;
      state.liFatId = discoverLiFatId();
      persistLiFatId();
      return CapiRelay;
    },

    // consent(true) stores a pending li_fat_id and enables track(); consent(false) disables
    // track() and deletes what this snippet stored.
    consent: function (granted) {
      state.consent = granted === true;
      if (state.consent) {
        if (!state.liFatId) state.liFatId = discoverLiFatId();
        persistLiFatId();
      } else {
        forgetLiFatId();
      }
      return state.consent;
    },

    hasConsent: function () { return state.consent; },

    // The click ID to pass to the store's backend for its own server-side events; null without
    // consent or when the visitor did not come from a LinkedIn ad.
    liFatId: function () { return state.consent ? state.liFatId : null; },

    // Sends one conversion. data: {value, user, eventId, timestamp, ...} in the relay's event
    // shape; eventId defaults to a fresh UUID (pass your order ID to share it with the server).
    // The Insight Tag (when window.lintrk exists and conversionIds names the event) gets the same
    // ID as event_id. Returns the event ID, or null when it went nowhere (no consent, not
    // initialised, bad eventId, no transport and no tag). Delivery failures are logged with
    // console.warn; the beacon's answer cannot be read.
    track: function (name, data) {
      if (!state.initialized || !state.consent) return null;
      var d = data || {};
      var eventId = d.eventId !== undefined ? String(d.eventId) : uuid4();
      if (eventId.length === 0 || eventId.length > MAX_EVENT_ID) {
        warn('eventId must have 1 to 64 characters');
        return null;
      }
      var event = {};
      for (var k in d) if (Object.prototype.hasOwnProperty.call(d, k)) event[k] = d[k];
      event.event = name;
      event.eventId = eventId;
      if (event.timestamp === undefined) event.timestamp = Date.now();
      var user = {};
      var given = d.user || {};
      for (var u in given) if (Object.prototype.hasOwnProperty.call(given, u)) user[u] = given[u];
      if (state.liFatId && user.liFatId === undefined) user.liFatId = state.liFatId;
      if (Object.keys(user).length > 0) event.user = user; else delete event.user;

      var tagged = tellInsightTag(name, eventId);
      var sent = send(JSON.stringify(event));
      return sent || tagged ? eventId : null;
    }
  };

  global.CapiRelay = CapiRelay;
})(typeof window !== 'undefined' ? window : this);
