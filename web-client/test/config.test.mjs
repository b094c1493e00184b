import { test } from 'node:test';
import assert from 'node:assert/strict';

import { lookupURL, parseSettings, resolveConfig, ConfigError } from '../config.js';

const PAGE = 'https://localhost:8443/?login=1000%40acme.example.com';

/** A fetch that answers `status` with `body` and records what was asked. */
function fakeFetch(status, body) {
  const asked = [];
  const fetch = async (url, init) => {
    asked.push({ url, init });
    if (status === 'offline') throw new TypeError('Failed to fetch');
    return {
      status,
      ok: status >= 200 && status < 300,
      json: async () => {
        if (typeof body === 'string') throw new SyntaxError('not JSON');
        return body;
      },
    };
  };
  return { fetch, asked };
}

test('the lookup asks /verto-config on the page origin with the login percent-encoded', () => {
  assert.equal(
    lookupURL('1000@acme.example.com', '/verto-config', PAGE),
    'https://localhost:8443/verto-config?login=1000%40acme.example.com',
  );
  assert.equal(
    lookupURL('a+b c&d', '/verto-config', PAGE),
    'https://localhost:8443/verto-config?login=a%2Bb%20c%26d',
  );
  assert.equal(
    lookupURL('x', 'https://gw.example.net/verto-config?tenant=1#frag', PAGE),
    'https://gw.example.net/verto-config?tenant=1&login=x',
  );
  assert.equal(lookupURL('x', '/verto-config?', PAGE), 'https://localhost:8443/verto-config?login=x');
});

test('200 gives the addresses; wsFallbackURL only when the gateway has one', async () => {
  const settings = parseSettings('');
  const one = fakeFetch(200, {
    login: '1000@acme.example.com',
    wsURL: 'wss://localhost:8443/',
    wsFallbackURL: 'wss://backup.example.com/',
  });
  const cfg = await resolveConfig('1000@acme.example.com', settings, { fetch: one.fetch, pageURL: PAGE });
  assert.equal(one.asked[0].url, 'https://localhost:8443/verto-config?login=1000%40acme.example.com');
  assert.equal(one.asked[0].init.cache, 'no-store');
  assert.deepEqual(cfg, {
    login: '1000@acme.example.com',
    wsURL: 'wss://localhost:8443/',
    wsFallbackURL: 'wss://backup.example.com/',
    iceServers: [],
    callerIdName: '',
  });
  const two = fakeFetch(200, { login: 'x', wsURL: 'wss://localhost:8443/' });
  const cfg2 = await resolveConfig('x', settings, { fetch: two.fetch, pageURL: PAGE });
  assert.equal(cfg2.wsFallbackURL, null);
});

test('each failed lookup is said in words', async () => {
  const settings = parseSettings('');
  for (const [status, body, kind, text] of [
    [404, { error: 'no partition' }, 'no-partition', /not known here.*user@domain/],
    [400, { error: 'invalid login' }, 'invalid-login', /not valid\. Write it as user@domain/],
    [500, 'oops', 'config-failed', /HTTP 500/],
    [200, { wsURL: 'https://wrong/' }, 'config-failed', /HTTP 200/],
    [200, 'not json', 'config-failed', /could not look up/],
    ['offline', null, 'gateway-unreachable', /Cannot reach the phone server/],
  ]) {
    const { fetch } = fakeFetch(status, body);
    await assert.rejects(resolveConfig('x@y', settings, { fetch, pageURL: PAGE }), (err) => {
      assert.ok(err instanceof ConfigError);
      assert.equal(err.kind, kind, String(status));
      assert.match(err.message, text);
      return true;
    });
  }
});

test('settings with a wsURL skip the lookup; bad settings are refused in words', async () => {
  const { fetch, asked } = fakeFetch(500, null);
  const settings = parseSettings(
    '{"wsURL": "wss://gw.example.com/", "wsFallbackURL": "wss://gw2.example.com/", "iceServers": [{"urls": "stun:stun.example.com"}]}',
  );
  const cfg = await resolveConfig('x@y', settings, { fetch, pageURL: PAGE });
  assert.equal(asked.length, 0);
  assert.equal(cfg.wsURL, 'wss://gw.example.com/');
  assert.equal(cfg.wsFallbackURL, 'wss://gw2.example.com/');
  assert.deepEqual(cfg.iceServers, [{ urls: 'stun:stun.example.com' }]);

  await assert.rejects(
    resolveConfig('x', parseSettings('{"wsURL": "gw.example.com"}'), { fetch, pageURL: PAGE }),
    { kind: 'bad-settings' },
  );
  assert.throws(() => parseSettings('{nope'), { kind: 'bad-settings' });
  assert.throws(() => parseSettings('[1]'), { kind: 'bad-settings' });
  assert.deepEqual(parseSettings('  '), { configURL: '/verto-config' });
});
