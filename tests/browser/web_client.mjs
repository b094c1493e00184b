// The real-browser test's browser side (run by tests/browser.rs, which starts the gateway
// and the simulated nodes and passes BROWSER_TEST_CONFIG): headless Chromium, driven by
// playwright-core, uses the bundled web client through the gateway. Every step prints one
// JSON line {"step","ok","detail"}; {"need":"restart"} asks the Rust side to restart the
// gateway and waits for a line on stdin. Exits 1 when a step failed.

import { createRequire } from 'node:module';
import { createInterface } from 'node:readline';
import path from 'node:path';

const cfg = JSON.parse(process.env.BROWSER_TEST_CONFIG);
// playwright-core lives in the test's own npm folder (cfg.npmPrefix/node_modules), which
// ES module imports do not search: resolve it from there.
const { chromium } = createRequire(path.join(cfg.npmPrefix, 'package.json'))('playwright-core');
const STEP_TIMEOUT = 20_000;
const RECONNECT_TIMEOUT = 60_000;
let failures = 0;

function emit(event) {
  process.stdout.write(JSON.stringify(event) + '\n');
}

const stdinLines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();

async function step(name, body) {
  try {
    const detail = await body();
    emit({ step: name, ok: true, detail: detail ?? null });
  } catch (err) {
    failures += 1;
    emit({ step: name, ok: false, detail: String(err && err.stack ? err.stack : err) });
  }
}

const client = (page) =>
  page.evaluate(() => {
    const c = window.vertoClient;
    return {
      state: c.state, node: c.node, callState: c.callState, callID: c.callID,
      sessid: c.sessid, dtmfSent: c.dtmfSent, errorKind: c.errorKind,
    };
  });

async function waitFor(page, predicate, arg, timeout = STEP_TIMEOUT) {
  await page.waitForFunction(predicate, arg, { timeout, polling: 50 });
  return client(page);
}

async function openAs(context, login) {
  const page = await context.newPage();
  page.on('console', (m) => {
    if (m.type() === 'error') console.error(`[${login}] console: ${m.text()}`);
  });
  await page.goto(`${cfg.baseURL}?login=${encodeURIComponent(login)}`, { timeout: STEP_TIMEOUT });
  return page;
}

async function connect(page, password) {
  await page.fill('#password', password);
  await page.click('#connect');
}

async function ready(page, node) {
  const snap = await waitFor(page, () => window.vertoClient.state === 'ready');
  await waitFor(page, (n) => window.vertoClient.node === n, node);
  const shown = (await page.textContent('#node')).trim();
  if (shown !== node) throw new Error(`the page shows node ${shown}, expected ${node}`);
  return { ...snap, node: shown };
}

const browser = await chromium.launch({
  executablePath: cfg.chromium,
  headless: true,
  args: [
    '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--disable-quic',
    '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
    '--ignore-certificate-errors',
  ],
});
try {
  const context = await browser.newContext({ ignoreHTTPSErrors: true, permissions: ['microphone'] });
  const a = await openAs(context, cfg.userA);

  await step('wrong password', async () => {
    await connect(a, 'not-the-password');
    const snap = await waitFor(a, () => window.vertoClient.errorKind === 'wrong-password');
    const text = (await a.textContent('#error')).trim();
    if (!/password/i.test(text)) throw new Error(`error text does not say password: ${text}`);
    return { text, state: snap.state };
  });

  await step('login A', async () => {
    await connect(a, cfg.password);
    const snap = await ready(a, cfg.nodeA);
    await a.screenshot({ path: path.join(cfg.screenshots, 'after-login.png'), fullPage: true });
    return { node: snap.node, sessid: snap.sessid };
  });

  await step('login B', async () => {
    const b = await openAs(context, cfg.userB);
    await connect(b, cfg.password);
    const snap = await ready(b, cfg.nodeB);
    await b.close();
    return { node: snap.node };
  });

  await step('call', async () => {
    await a.fill('#dial-number', '9196');
    await a.click('#call');
    const snap = await waitFor(a, () => window.vertoClient.callState === 'active');
    await a.screenshot({ path: path.join(cfg.screenshots, 'during-call.png'), fullPage: true });
    return { callID: snap.callID };
  });

  await step('dtmf', async () => {
    await a.click('#dtmf-1');
    await a.click('#dtmf-hash');
    const snap = await waitFor(a, () => (window.vertoClient.dtmfSent || '').includes('1#'));
    return { sent: snap.dtmfSent };
  });

  await step('hangup', async () => {
    await a.click('#hangup');
    const snap = await waitFor(a, () => window.vertoClient.callState === 'ended');
    return { line: (await a.textContent('#call-state')).trim(), state: snap.callState };
  });

  await step('incoming call', async () => {
    await a.fill('#dial-number', 'callback');
    await a.click('#call');
    await a.waitForSelector('#incoming:not([hidden])', { timeout: STEP_TIMEOUT });
    const from = (await a.textContent('#incoming-from')).trim();
    await a.click('#answer');
    await waitFor(a, () => window.vertoClient.callState === 'active');
    await a.click('#hangup');
    await waitFor(a, () => window.vertoClient.callState === 'ended');
    return { from };
  });

  await step('reconnect', async () => {
    const before = await client(a);
    // Every state the status line passes through from now on, so the wait below
    // cannot be satisfied by the old connection before the page saw it close.
    await a.evaluate(() => {
      const status = document.querySelector('#status');
      window.seenStates = [];
      new MutationObserver(() => window.seenStates.push(status.dataset.state))
        .observe(status, { attributes: true, attributeFilter: ['data-state'] });
    });
    emit({ need: 'restart' });
    const answer = await stdinLines.next();
    if (answer.done) throw new Error('no answer from the test on stdin');
    const snap = await waitFor(
      a,
      (b) => window.seenStates.includes('reconnecting') &&
        window.vertoClient.state === 'ready' && window.vertoClient.sessid === b.sessid &&
        window.vertoClient.node === b.node,
      before,
      RECONNECT_TIMEOUT,
    );
    if (snap.node !== cfg.nodeA) throw new Error(`reconnected to ${snap.node}, expected ${cfg.nodeA}`);
    const seen = await a.evaluate(() => window.seenStates);
    return { node: snap.node, same_sessid: snap.sessid === before.sessid, states: seen };
  });
} finally {
  await browser.close();
}
process.exit(failures === 0 ? 0 : 1);
