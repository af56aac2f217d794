#!/usr/bin/env node
// A development OpenID provider for barnplan's tests and demo: panva/oidc-provider (OpenID
// Certified), started on loopback by node/cli/dev_provider.py with a JSON configuration file:
//
//   node provider.js CONFIG.json
//
// CONFIG.json: {
//   "port": 0,                      // 0: any free port; the chosen one is printed
//   "issuer": "http://127.0.0.1:PORT" (optional; default from the port),
//   "jwks": {"keys": [...]},        // private signing keys; the first signs (rotation: prepend)
//   "clients": [{client_id, client_secret, redirect_uris, post_logout_redirect_uris,
//                backchannel_logout_uri}],
//   "accounts": {"LOGIN": {claims...}},  // a login not listed signs in with only its "sub"
//   "id_token_ttl": 3600
// }
//
// The provider's own development login page ("devInteractions") takes any login and password:
// the login is the subject. Once listening it prints one line of JSON to stdout:
//   {"issuer": "...", "port": N}
import { readFileSync } from 'node:fs';
import Provider from 'oidc-provider';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const accounts = config.accounts || {};

async function findAccount(_ctx, id) {
  return {
    accountId: id,
    async claims() {
      return { sub: id, ...(accounts[id] || {}) };
    },
  };
}

function start(port) {
  const issuer = config.issuer || `http://127.0.0.1:${port}`;
  const provider = new Provider(issuer, {
    clients: config.clients,
    jwks: config.jwks,
    findAccount,
    claims: {
      openid: ['sub'],
      profile: ['name', 'given_name', 'family_name', 'hsa_id', 'groups', 'roles'],
      email: ['email'],
      // the Swedish OIDC profile's identity number (oidc.se), as a residents' e-identification
      // broker sends it
      'https://id.oidc.se/scope/naturalPersonNumber': [
        'https://id.oidc.se/claim/personalIdentityNumber',
      ],
    },
    // the ID token carries the profile claims, as Entra ID and most agency IdPs do
    conformIdTokenClaims: false,
    pkce: { required: () => true },
    // the nodes it calls back (back-channel logout) are on loopback, which oidc-provider's
    // guard against requests to special-use addresses refuses: a development provider on
    // loopback lifts that guard for its own calls, as no provider in production would
    fetch: (url, options) => {
      const { dispatcher: _guard, ...rest } = options;
      return globalThis.fetch(url, rest);
    },
    ttl: { IdToken: config.id_token_ttl || 3600, Session: 3600, Interaction: 600, Grant: 3600 },
    cookies: { keys: ['barnplan-test-provider-cookie-key'] },
    features: {
      devInteractions: { enabled: true },
      rpInitiatedLogout: { enabled: true },
      backchannelLogout: { enabled: true },
    },
    // a test provider: silence the development warnings on stderr
    renderError(ctx, out) {
      ctx.type = 'html';
      ctx.body = `<!DOCTYPE html><title>error</title><h1>${out.error}</h1><p>${out.error_description || ''}</p>`;
    },
  });
  provider.proxy = false;
  // what went wrong calling a client back, for the log (stderr) the tests and the demo keep
  provider.on('backchannel.error', (_ctx, err, client) => {
    process.stderr.write(`backchannel.error ${client.clientId}: ${err.message} ${err.cause ? err.cause.message || err.cause.code : ""}\n`);
  });
  provider.on('server_error', (_ctx, err) => {
    process.stderr.write(`server_error: ${err.message}\n`);
  });
  return provider;
}

const server = (await import('node:http')).createServer();
server.listen(config.port || 0, '127.0.0.1', () => {
  const { port } = server.address();
  const provider = start(port);
  server.on('request', provider.callback());
  process.stdout.write(`${JSON.stringify({ issuer: provider.issuer, port })}\n`);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
