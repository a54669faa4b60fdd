// node-oidc-provider, in memory, answering RFC 7662 introspection of an opaque access token
// for an authenticated client. Prints the token on stdout once listening.
//   node peer.mjs <port>
import Provider from 'oidc-provider';

const port = Number(process.argv[2]);
const issuer = `http://127.0.0.1:${port}`;
const provider = new Provider(issuer, {
  clients: [{
    client_id: 'resource-server',
    client_secret: 'bench-secret-bench-secret-bench-secret',
    redirect_uris: ['http://127.0.0.1/cb'],
    grant_types: ['authorization_code'],
    response_types: ['code'],
  }],
  features: { introspection: { enabled: true }, devInteractions: { enabled: false } },
  pkce: { required: () => false },
});
const client = await provider.Client.find('resource-server');
const grant = new provider.Grant({ accountId: 'alice', clientId: client.clientId });
grant.addOIDCScope('openid');
const grantId = await grant.save();
const at = new provider.AccessToken({ accountId: 'alice', client, grantId, scope: 'openid', gty: 'authorization_code' });
const token = await at.save();
provider.listen(port, '127.0.0.1', () => {
  process.stdout.write(`TOKEN ${token}\n`);
});
