import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type KeyLike } from 'jose';
import { DEV_JWT_SECRET, mintToken, TokenVerifier } from './token-verifier';

describe('TokenVerifier: HS256 dev tokens beside a trusted OpenID issuer', () => {
  let server: http.Server;
  let base: string;
  let privateKey: KeyLike;

  beforeAll(async () => {
    const pair = await generateKeyPair('RS256');
    privateKey = pair.privateKey;
    const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'RS256' };
    server = http.createServer((_, res) =>
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [jwk] })),
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const sign = (iss: string) =>
    new SignJWT({ roles: ['clinician'], fhirUser: 'Practitioner/p1', name: 'Dr P' })
      .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
      .setIssuer(iss)
      .setSubject('u1')
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(privateKey);

  it('accepts the trusted issuer by iss and the dev secret; refuses an unknown issuer and alg confusion', async () => {
    const verifier = new TokenVerifier({ trustedIssuers: [{ issuer: `${base}/dev-issuer`, jwksUrl: `${base}/jwks` }] });
    expect(await verifier.verify(await sign(`${base}/dev-issuer`))).toEqual({
      id: 'u1',
      roles: ['clinician'],
      fhirUser: 'Practitioner/p1',
      display: 'Dr P',
    });
    expect(await verifier.verify(await sign('https://elsewhere.example'))).toBeUndefined();
    expect((await verifier.verify(await mintToken({ sub: 'd', roles: ['admin'] })))?.roles).toEqual(['admin']);
    expect(await verifier.verify(await mintToken({ sub: 'd', roles: ['admin'] }, { secret: 'other' }))).toBeUndefined();
    // With an explicit JWKS and no secret, HS256 tokens (even with the dev secret) are refused.
    const strict = new TokenVerifier({ jwksUrl: `${base}/jwks` });
    expect(
      await strict.verify(await mintToken({ sub: 'd', roles: ['admin'] }, { secret: DEV_JWT_SECRET })),
    ).toBeUndefined();
    expect((await strict.verify(await sign('any')))?.id).toBe('u1');
  });
});
