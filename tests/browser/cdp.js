'use strict';
// A minimal Chrome DevTools Protocol client over --remote-debugging-pipe (no WebSocket, no npm
// packages): Chromium reads NUL-terminated JSON commands on fd 3 and writes replies and events on
// fd 4. Owns the browser process; one instance per test file.
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const CANDIDATES = ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'];

function findChromium() {
  if (process.env.CHROMIUM) return process.env.CHROMIUM;
  const found = CANDIDATES.find((p) => fs.existsSync(p));
  if (!found) throw new Error('no Chromium found (apt-get install -y chromium, or set CHROMIUM)');
  return found;
}

class Browser {
  static async launch() {
    const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'capi-relay-browser-'));
    const args = [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--no-default-browser-check', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-extensions',
      '--disable-dev-shm-usage', '--remote-debugging-pipe', `--user-data-dir=${profile}`,
      'about:blank',
    ];
    const proc = spawn(findChromium(), args, { stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'] });
    const browser = new Browser(proc, profile);
    await browser.send('Browser.getVersion');
    return browser;
  }

  constructor(proc, profile) {
    this.proc = proc;
    this.profile = profile;
    this.nextId = 1;
    this.pending = new Map();
    this.listeners = [];
    this.stderr = '';
    this.exited = false;
    let buffer = '';
    proc.stdio[4].setEncoding('utf8');
    proc.stdio[4].on('data', (chunk) => {
      buffer += chunk;
      let end;
      while ((end = buffer.indexOf('\0')) >= 0) {
        const text = buffer.slice(0, end);
        buffer = buffer.slice(end + 1);
        this.dispatch(JSON.parse(text));
      }
    });
    proc.stderr.setEncoding('utf8');
    proc.stderr.on('data', (d) => { this.stderr = (this.stderr + d).slice(-4000); });
    proc.on('exit', (code, signal) => {
      this.exited = true;
      const err = new Error(`Chromium exited (${code ?? signal}): ${this.stderr}`);
      for (const { reject } of this.pending.values()) reject(err);
      this.pending.clear();
    });
    // A broken pipe after exit is reported through 'exit' above.
    proc.stdio[3].on('error', () => {});
  }

  dispatch(message) {
    if (message.id !== undefined) {
      const waiter = this.pending.get(message.id);
      if (!waiter) return;
      this.pending.delete(message.id);
      if (message.error) waiter.reject(new Error(`${waiter.method}: ${message.error.message}`));
      else waiter.resolve(message.result);
      return;
    }
    for (const listener of this.listeners.slice()) listener(message);
  }

  send(method, params = {}, sessionId = undefined) {
    if (this.exited) return Promise.reject(new Error('Chromium is not running'));
    const id = this.nextId++;
    const message = { id, method, params };
    if (sessionId) message.sessionId = sessionId;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, method });
      this.proc.stdio[3].write(JSON.stringify(message) + '\0');
    });
  }

  on(listener) {
    this.listeners.push(listener);
    return () => { this.listeners = this.listeners.filter((l) => l !== listener); };
  }

  // A fresh incognito-like context (own cookies and storage) with one page in it.
  async newPage() {
    const { browserContextId } = await this.send('Target.createBrowserContext', { disposeOnDetach: true });
    const { targetId } = await this.send('Target.createTarget', { url: 'about:blank', browserContextId });
    const { sessionId } = await this.send('Target.attachToTarget', { targetId, flatten: true });
    const page = new Page(this, sessionId, browserContextId);
    await page.send('Page.enable');
    await page.send('Runtime.enable');
    await page.send('Network.enable');
    return page;
  }

  async close() {
    if (!this.exited) {
      const exited = new Promise((resolve) => this.proc.once('exit', resolve));
      this.send('Browser.close').catch(() => {});  // the reply races the exit; exit is what counts
      const timer = setTimeout(() => this.proc.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    fs.rmSync(this.profile, { recursive: true, force: true });
  }
}

// One page (tab) attached with a flat session. Records console messages and network requests.
class Page {
  constructor(browser, sessionId, browserContextId) {
    this.browser = browser;
    this.sessionId = sessionId;
    this.browserContextId = browserContextId;
    this.console = [];   // {type, text}
    this.requests = [];  // {id, url, method, type, status, done: 'finished' | 'failed', error}
    this.loadWaiters = [];
    this.off = browser.on((m) => {
      if (m.sessionId !== sessionId) return;
      if (m.method === 'Runtime.consoleAPICalled') {
        this.console.push({
          type: m.params.type,
          text: m.params.args.map((a) => (a.value !== undefined ? String(a.value) : a.description)).join(' '),
        });
      } else if (m.method === 'Network.requestWillBeSent') {
        const r = m.params.request;
        this.requests.push({ id: m.params.requestId, url: r.url, method: r.method, type: m.params.type });
      } else if (m.method === 'Network.responseReceived') {
        const r = this.request(m.params.requestId);
        if (r) r.status = m.params.response.status;
      } else if (m.method === 'Network.loadingFinished') {
        const r = this.request(m.params.requestId);
        if (r) r.done = 'finished';
      } else if (m.method === 'Network.loadingFailed') {
        const r = this.request(m.params.requestId);
        if (r) {
          r.done = 'failed';
          r.error = m.params.corsErrorStatus ? m.params.corsErrorStatus.corsError : m.params.errorText;
        }
      } else if (m.method === 'Page.loadEventFired') {
        const waiters = this.loadWaiters;
        this.loadWaiters = [];
        waiters.forEach((w) => w());
      }
    });
  }

  send(method, params = {}) {
    return this.browser.send(method, params, this.sessionId);
  }

  request(id) {
    for (let i = this.requests.length - 1; i >= 0; i--) if (this.requests[i].id === id) return this.requests[i];
    return undefined;
  }

  async goto(url) {
    const loaded = new Promise((resolve) => this.loadWaiters.push(resolve));
    const result = await this.send('Page.navigate', { url });
    if (result.errorText) throw new Error(`navigate ${url}: ${result.errorText}`);
    await withTimeout(loaded, 10000, `load of ${url}`);
  }

  // Evaluates an expression (a promise is awaited) and returns its JSON value.
  async eval(expression) {
    const r = await this.send('Runtime.evaluate', { expression, awaitPromise: true, returnByValue: true });
    if (r.exceptionDetails) {
      const d = r.exceptionDetails;
      throw new Error(`page: ${d.exception ? d.exception.description : d.text}`);
    }
    return r.result.value;
  }

  async cookies() {
    const { cookies } = await this.browser.send('Storage.getCookies', { browserContextId: this.browserContextId });
    return cookies;
  }

  async close() {
    this.off();
    await this.browser.send('Target.disposeBrowserContext', { browserContextId: this.browserContextId });
  }
}

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`timeout: ${what}`)), ms); }),
  ]).finally(() => clearTimeout(timer));
}

module.exports = { Browser, withTimeout };
