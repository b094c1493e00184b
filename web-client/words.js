// Everything the user reads: what the server's error codes, close codes and hang-up
// causes mean, and the status and call lines, in plain words. Pure functions over plain
// values, so the texts can be changed (or translated) in one place.

/** mod_verto's "log in first": the answer to the empty `login` every client sends. */
export const AUTH_REQUIRED = -32000;
/** A refused login (wrong password, unknown login, cool-down, ...). */
export const AUTH_FAILED = -32001;
/** A method's own failure; the gateway uses it for "No node available". */
export const SESSION_ERROR = -32002;

/**
 * What a failed login means for the user and whether retrying later can help.
 * @returns {{kind: string, text: string, retry: boolean}}
 */
export function describeLoginError(err) {
  if (err?.kind !== 'rpc') {
    const text = err?.kind ? err.message : 'The login could not be sent.';
    return { kind: err?.kind ?? 'login-error', text, retry: true };
  }
  const msg = err.rpcMessage ?? '';
  if (err.code === AUTH_FAILED) {
    switch (msg) {
      case 'Authentication Failure':
        return { kind: 'wrong-password', text: 'Wrong password for this login.', retry: false };
      case 'Login Incorrect':
        return {
          kind: 'unknown-login',
          text: 'This login is not known here: no server serves it. Check the login (user@domain).',
          retry: false,
        };
      case 'Too many failed logins, retry later':
        return {
          kind: 'cooldown',
          text: 'Too many failed logins. Wait a minute, then try again.',
          retry: false,
        };
      case 'Missing passwd':
        return { kind: 'missing-password', text: 'Enter your password.', retry: false };
      case 'Session in use':
        return {
          kind: 'session-in-use',
          text: 'This session belongs to another login. Press Connect to start a new session.',
          retry: false,
        };
      default:
        return { kind: 'login-refused', text: `The server refused the login (${msg}).`, retry: false };
    }
  }
  if (err.code === SESSION_ERROR && msg === 'No node available') {
    return {
      kind: 'node-unavailable',
      text: 'No server is available for this login right now.',
      retry: true,
    };
  }
  if (err.code === AUTH_REQUIRED) {
    return { kind: 'login-refused', text: 'The server did not accept the login.', retry: false };
  }
  return { kind: 'login-error', text: `The login failed (${msg}).`, retry: true };
}

/** Plain words for a WebSocket close the session did not ask for. */
export function describeClose(code, reason) {
  switch (code) {
    case 1001:
      return 'The server is restarting.';
    case 1014:
      return 'The connection to the phone server was lost.';
    case 1006:
      return 'The connection was lost.';
    case 1009:
      return 'The server closed the connection: a message was too big.';
    case 1011:
      return 'The server closed the connection: it got no answer from this browser.';
    default:
      return reason ? `The server closed the connection (${reason}).` : 'The connection was closed.';
  }
}

/** The status line for a session snapshot (`VertoSession#info`). */
export function statusLine(info) {
  const host = hostOf(info.url);
  const via = info.usingFallback ? ' (fallback address)' : '';
  const of = `attempt ${info.attempt} of ${info.maxAttempts}`;
  switch (info.state) {
    case 'idle':
      return 'Not connected';
    case 'connecting':
      return info.attempt > 0
        ? `Connecting to ${host}${via} (${of})…`
        : `Connecting to ${host}${via}…`;
    case 'logging-in':
      return `Logging in as ${info.login}…`;
    case 'ready':
      return `Connected as ${info.login}`;
    case 'reconnecting': {
      const secs = Math.max(1, Math.ceil((info.retryInMs ?? 0) / 1000));
      return `Not connected. Trying again in ${secs} s (${of})…`;
    }
    case 'punted':
      return 'Signed out here: this session is now open in another tab or window';
    case 'failed':
      return 'Not connected';
    case 'closed':
      return 'Disconnected';
    default:
      return info.state;
  }
}

/** The host[:port] of a URL, for the status line. */
export function hostOf(url) {
  try {
    return new URL(url).host;
  } catch {
    return url ?? '';
  }
}

// Hang-up causes FreeSWITCH sends most, in words; others are spelled out from the name.
const CAUSES = {
  NORMAL_CLEARING: 'The call ended.',
  USER_BUSY: 'The line is busy.',
  NO_ANSWER: 'No answer.',
  NO_USER_RESPONSE: 'No answer.',
  CALL_REJECTED: 'The call was declined.',
  ORIGINATOR_CANCEL: 'The caller hung up.',
  NO_ROUTE_DESTINATION: 'That number cannot be reached from here (no route).',
  UNALLOCATED_NUMBER: 'That number does not exist.',
  INCOMPATIBLE_DESTINATION: 'The call could not be set up: the audio settings did not match.',
  DESTINATION_OUT_OF_ORDER: 'The other side is unreachable.',
  USER_NOT_REGISTERED: 'That user is not online.',
  SUBSCRIBER_ABSENT: 'That user is not online.',
  NORMAL_TEMPORARY_FAILURE: 'The call failed for a moment; try again.',
  RECOVERY_ON_TIMER_EXPIRE: 'The call was lost while the connection was down.',
  BEARERCAPABILITY_NOTAVAIL: 'The call could not be taken back after the reconnect.',
  BEARERCAPABILITY_NOTAUTH: 'The call ended because the login expired.',
  MEDIA_TIMEOUT: 'The call ended: no audio arrived for too long.',
  LOSE_RACE: 'The call was answered elsewhere.',
  PICKED_OFF: 'The call was picked up elsewhere.',
  MANAGER_REQUEST: 'The call was ended by the server.',
  SYSTEM_SHUTDOWN: 'The call ended: the server is shutting down.',
};

/** Plain words for a hang-up cause name (`NORMAL_CLEARING`, ...) and/or code. */
export function causeText(cause, causeCode) {
  if (typeof cause === 'string' && CAUSES[cause]) return CAUSES[cause];
  if (typeof cause === 'string' && cause) {
    const words = cause.toLowerCase().replace(/_/g, ' ');
    return `The call ended (${words}).`;
  }
  if (causeCode !== undefined && causeCode !== null) return `The call ended (cause ${causeCode}).`;
  return 'The call ended.';
}

/** Plain words for a call state, with the other party named. */
export function callStateText(call) {
  if (!call) return 'No call';
  const who = partyName(call);
  switch (call.state) {
    case 'dialing':
      return `Starting the call to ${who}…`;
    case 'trying':
      return `Calling ${who}…`;
    case 'ringing':
      return `Ringing ${who}…`;
    case 'early':
      return `Ringing ${who} (call progress audio)…`;
    case 'incoming':
      return `Incoming call from ${who}`;
    case 'answering':
      return `Answering ${who}…`;
    case 'active':
      return `In call with ${who}`;
    case 'recovering':
      return `Connection lost: keeping the call with ${who} while reconnecting…`;
    case 'ended':
      return call.endedText || 'The call ended.';
    default:
      return call.state;
  }
}

/** The other party as "Name (number)", or whichever of the two is known. */
export function partyName(call) {
  const { remoteNumber: number } = call;
  // FreeSWITCH names the far end of a call placed from Verto "Outbound Call": no name.
  const name = call.remoteName === 'Outbound Call' ? '' : call.remoteName;
  if (name && number && name !== number) return `${name} (${number})`;
  return number || name || 'unknown';
}

/** Words for why the microphone or the peer connection could not start. */
export function mediaErrorText(err) {
  switch (err?.name) {
    case 'NotAllowedError':
    case 'SecurityError':
      return 'Microphone access was denied. Allow the microphone for this page, then call again.';
    case 'NotFoundError':
    case 'OverconstrainedError':
      return 'No microphone was found.';
    case 'NotReadableError':
      return 'The microphone is in use by another program.';
    case 'InsecureContextError':
      return 'This page is not served over https://, so the browser allows no microphone.';
    default:
      return `The call could not start: ${err?.message || err}`;
  }
}

