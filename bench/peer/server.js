// The benchmark peer: node-oidc-provider with its in-memory adapter, issuing ES256 JWT access
// tokens (RFC 9068 shape via resource indicators) for the client_credentials grant.
// Usage: node server.js PORT CLIENT_ID CLIENT_SECRET AUDIENCE
// Prints "ready" on stdout once listening. Bound to 127.0.0.1 only.
import { generateKeyPair, exportJWK } from 'jose';
import Provider from 'oidc-provider';

const [port, clientId, clientSecret, audience] = process.argv.slice(2);
const scope = 'people:read articles:read';

const { privateKey } = await generateKeyPair('ES256', { extractable: true });
const jwk = { ...(await exportJWK(privateKey)), alg: 'ES256', use: 'sig', kid: 'bench-es256' };

const provider = new Provider(`http://127.0.0.1:${port}`, {
  jwks: { keys: [jwk] },
  clients: [{
    client_id: clientId,
    client_secret: clientSecret,
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_basic',
    id_token_signed_response_alg: 'ES256',
    scope,
  }],
  scopes: scope.split(' '),
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => audience,
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({
        scope,
        audience,
        accessTokenTTL: 900,
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg: 'ES256' } },
      }),
    },
  },
});

provider.listen(Number(port), '127.0.0.1', () => { console.log('ready'); });
