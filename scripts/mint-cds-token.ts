import * as fs from 'node:fs';
import type { JWK } from 'jose';
import { mintCdsClientJwt } from '../apps/api/src/cds-hooks/cds-client-auth';

/**
 * Dev helper: prints a one-call CDS client JWT, as an EHR would send it to a CDS service.
 *   CDS_CLIENT_SECRET=<secret in CDS_CLIENTS> npm run --silent cds-token -- <issuer> <service URL>
 *   CDS_CLIENT_PRIVATE_JWK=<file with the private JWK> npm run --silent cds-token -- <issuer> <service URL>
 * The service URL is the aud: the full URL of the endpoint called, e.g. http://127.0.0.1:3000/cds-services/ketamine-order-check.
 */
async function main(): Promise<void> {
  const [issuer, audience] = process.argv.slice(2);
  const secret = process.env.CDS_CLIENT_SECRET;
  const jwkFile = process.env.CDS_CLIENT_PRIVATE_JWK;
  if (!issuer || !audience || (!secret && !jwkFile)) {
    process.stderr.write(
      'usage: CDS_CLIENT_SECRET=... | CDS_CLIENT_PRIVATE_JWK=file  npm run --silent cds-token -- <issuer> <service URL>\n',
    );
    process.exit(2);
  }
  const privateJwk = jwkFile ? (JSON.parse(fs.readFileSync(jwkFile, 'utf8')) as JWK) : undefined;
  process.stdout.write((await mintCdsClientJwt({ issuer, audience, secret, privateJwk })) + '\n');
}

void main();
