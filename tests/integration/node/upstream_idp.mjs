// node-oidc-provider as a company's identity provider, in memory, on loopback: the upstream
// pipe2-authd signs people in through in tests/integration/test_upstream.py.
//   node upstream_idp.mjs <port> <client_id> <client_secret> <redirect_uri>
// Any login name signs in (its development login and consent pages); the account's claims
// are sub = the login name, name "<Login> Example", email <login>@example.com (verified),
// groups ["mcp-users"] (["other"] for a login that starts with "outsider"). Prints READY.
import Provider from 'oidc-provider';

const [port, clientId, clientSecret, redirectUri] = process.argv.slice(2);
const issuer = `http://127.0.0.1:${port}`;

const provider = new Provider(issuer, {
  clients: [{
    client_id: clientId,
    client_secret: clientSecret,
    redirect_uris: [redirectUri],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'], groups: ['groups'] },
  scopes: ['openid', 'email', 'profile', 'groups'],
  conformIdTokenClaims: false, // the claims of the scopes asked, in the ID token itself
  features: { devInteractions: { enabled: true } },
  pkce: { required: () => true },
  async findAccount(_ctx, id) {
    return {
      accountId: id,
      async claims() {
        return {
          sub: id,
          name: `${id[0].toUpperCase()}${id.slice(1)} Example`,
          email: `${id}@example.com`,
          email_verified: true,
          groups: id.startsWith('outsider') ? ['other'] : ['mcp-users'],
        };
      },
    };
  },
});
provider.listen(Number(port), '127.0.0.1', () => process.stdout.write('READY\n'));
