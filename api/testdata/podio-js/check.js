// Usage: node check.js <root proxy URL> <account-scoped token> <expired token> <user id>
// Drives podio-js, unchanged, against dirgate's root proxy listener and prints one JSON object
// with what the SDK saw. api/proxy_sdk_test.go asserts on it.
'use strict';
const Podio = require('podio-js').api;

const [apiURL, token, expired, userID] = process.argv.slice(2);

function sdk(accessToken) {
  return new Podio({ authType: 'server', clientId: 'unused', clientSecret: 'unused' }, {
    apiURL,
    sessionStore: { get: (type, cb) => cb({ accessToken }), set: (obj, type, cb) => cb && cb() },
  });
}

async function outcome(p) {
  try {
    return { ok: true, body: await p };
  } catch (e) {
    return { ok: false, error: e.name, status: e.status, body: e.message };
  }
}

(async () => {
  const podio = sdk(token);
  const out = {};
  out.orgs = await outcome(podio.request('GET', '/org/'));
  out.members = await outcome(podio.request('GET', '/org/3001/member/', { limit: 5, offset: 1 }));
  out.add = await outcome(podio.request('POST', '/space/40003/member/', { users: [Number(userID)], role: 'light' }));
  out.update = await outcome(podio.request('PUT', '/space/40003/member/' + userID, { role: 'regular' }));
  out.end = await outcome(podio.request('DELETE', '/space/40003/member/' + userID));
  out.notFound = await outcome(podio.request('GET', '/space/99999999'));
  out.badRequest = await outcome(podio.request('PUT', '/space/40003/member/' + userID, { role: 'boss' }));
  out.rateLimited = await outcome(podio.request('GET', '/user/status')); // the test injects a 420 here
  out.expired = await outcome(sdk(expired).request('GET', '/org/'));
  process.stdout.write(JSON.stringify(out));
})().catch((e) => { console.error(e); process.exit(1); });
