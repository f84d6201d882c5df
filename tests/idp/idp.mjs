// A real OpenID provider for keygate's OAuth tests: npm's oidc-provider, issuing
// client_credentials JWT access tokens (audience "kafka") on loopback.
//
//   node idp.mjs <port> <kid>[,<kid>…] [alg]
//
// Signing keys are generated at start, one per kid (the first signs). Restarting with
// other kids is a key rotation at the IdP. Clients (id:secret):
//   payments-app:payments-secret  → groups ["payments"]
//   web-app:web-secret            → groups ["web"]
import { generateKeyPairSync } from 'node:crypto';
import Provider from 'oidc-provider';

const [port, kids = 'k1', alg = 'RS256'] = process.argv.slice(2);
const issuer = `http://127.0.0.1:${port}`;

function keyFor(kid) {
  let pair;
  if (alg.startsWith('RS') || alg.startsWith('PS')) {
    pair = generateKeyPairSync('rsa', { modulusLength: 2048 });
  } else if (alg === 'ES256') {
    pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  } else if (alg === 'ES384') {
    pair = generateKeyPairSync('ec', { namedCurve: 'P-384' });
  } else {
    pair = generateKeyPairSync('ed25519');
  }
  return { ...pair.privateKey.export({ format: 'jwk' }), kid, alg, use: 'sig' };
}

const groups = { 'payments-app': ['payments'], 'web-app': ['web'] };
const provider = new Provider(issuer, {
  clients: Object.keys(groups).map((id) => ({
    client_id: id,
    client_secret: id.replace('-app', '-secret'),
    grant_types: ['client_credentials'],
    redirect_uris: [],
    response_types: [],
    id_token_signed_response_alg: alg,
  })),
  jwks: { keys: kids.split(',').map(keyFor) },
  // ES384 is not among oidc-provider's default algorithms; allow exactly the chosen one.
  enabledJWA: { idTokenSigningAlgValues: [alg] },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => 'urn:keygate:kafka',
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({
        scope: 'kafka',
        audience: 'kafka',
        accessTokenTTL: Number(process.env.IDP_TOKEN_TTL || 300),
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg } },
      }),
    },
  },
  extraTokenClaims: (ctx, token) => ({ groups: groups[token.clientId] || [] }),
});
provider.proxy = false;
provider.listen(Number(port), '127.0.0.1', () => {
  console.log(`idp ready ${issuer}`);
});
