// Where a login's browser connects: the page's settings (a JSON block in index.html),
// then the gateway's `/verto-config?login=…`. No DOM access beyond reading the settings
// text the caller hands in.

/** The settings a page has when its JSON block is missing or empty. */
export const DEFAULT_SETTINGS = Object.freeze({ configURL: '/verto-config' });

/** Why no address could be found, in words. */
export class ConfigError extends Error {
  constructor(kind, text) {
    super(text);
    this.name = 'ConfigError';
    this.kind = kind;
  }
}

/**
 * Parses the page's settings JSON: `{"configURL": "/verto-config"}` (ask the gateway),
 * or `{"wsURL": "wss://…", "wsFallbackURL"?: "wss://…"}` (fixed addresses, no lookup);
 * `iceServers` (RTCIceServer list) and `callerIdName` may be added to either.
 */
export function parseSettings(text) {
  if (!text || !text.trim()) return { ...DEFAULT_SETTINGS };
  let parsed;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new ConfigError('bad-settings', 'The page settings are not valid JSON.');
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new ConfigError('bad-settings', 'The page settings must be a JSON object.');
  }
  return { ...DEFAULT_SETTINGS, ...parsed };
}

/** Whether `url` is a WebSocket address a browser can open. */
export function isWebSocketURL(url) {
  if (typeof url !== 'string') return false;
  try {
    const u = new URL(url);
    return u.protocol === 'wss:' || u.protocol === 'ws:';
  } catch {
    return false;
  }
}

/** The lookup address for `login`: `configURL` resolved against the page, with
 * `login=<encodeURIComponent(login)>` appended. */
export function lookupURL(login, configURL, pageURL) {
  const u = new URL(configURL || DEFAULT_SETTINGS.configURL, pageURL);
  u.hash = '';
  const base = u.href.endsWith('?') ? u.href.slice(0, -1) : u.href;
  return `${base}${u.search ? '&' : '?'}login=${encodeURIComponent(login)}`;
}

/**
 * Finds where `login` connects: `{login, wsURL, wsFallbackURL, iceServers, callerIdName}`.
 * Throws a ConfigError with words for the user.
 * @param {string} login
 * @param {object} settings from parseSettings
 * @param {{fetch: Function, pageURL: string}} env
 */
export async function resolveConfig(login, settings, { fetch, pageURL }) {
  const extras = {
    iceServers: Array.isArray(settings.iceServers) ? settings.iceServers : [],
    callerIdName: typeof settings.callerIdName === 'string' ? settings.callerIdName : '',
  };
  if (settings.wsURL !== undefined) {
    if (!isWebSocketURL(settings.wsURL)) {
      throw new ConfigError('bad-settings', `The page's wsURL (${settings.wsURL}) is not a ws:// or wss:// address.`);
    }
    return {
      login,
      wsURL: settings.wsURL,
      wsFallbackURL: isWebSocketURL(settings.wsFallbackURL) ? settings.wsFallbackURL : null,
      ...extras,
    };
  }
  let resp;
  try {
    resp = await fetch(lookupURL(login, settings.configURL, pageURL), {
      cache: 'no-store',
      headers: { Accept: 'application/json' },
    });
  } catch {
    throw new ConfigError(
      'gateway-unreachable',
      'Cannot reach the phone server to look up this login. Check your network connection.',
    );
  }
  let body = null;
  try {
    body = await resp.json();
  } catch {
    // Not JSON: judged by the status below.
  }
  if (resp.status === 404) {
    throw new ConfigError(
      'no-partition',
      'This login is not known here: no server serves it. Check the login (user@domain).',
    );
  }
  if (resp.status === 400) {
    throw new ConfigError('invalid-login', 'This login is not valid. Write it as user@domain.');
  }
  if (!resp.ok || !body || !isWebSocketURL(body.wsURL)) {
    throw new ConfigError(
      'config-failed',
      `The phone server could not look up this login (HTTP ${resp.status}). Try again later.`,
    );
  }
  return {
    login,
    wsURL: body.wsURL,
    wsFallbackURL: isWebSocketURL(body.wsFallbackURL) ? body.wsFallbackURL : null,
    ...extras,
  };
}
