import { mintToken, ROLES, type Role } from '@kc/auth';

/**
 * Dev helper: prints a bearer token signed with JWT_SECRET (or the dev secret).
 *   npm run token -- clinician [subject] [Practitioner/id]
 * With TOKEN_SCOPE set (e.g. "system/CarePlan.rs"), the token carries those SMART scopes and is held to them.
 */
async function main(): Promise<void> {
  const [role = 'clinician', sub = `dev-${role}`, fhirUser] = process.argv.slice(2);
  if (!(ROLES as readonly string[]).includes(role)) {
    process.stderr.write(`role must be one of ${ROLES.join(', ')}\n`);
    process.exit(2);
  }
  const token = await mintToken(
    { sub, roles: [role as Role], fhirUser, scope: process.env.TOKEN_SCOPE || undefined },
    { secret: process.env.JWT_SECRET, issuer: process.env.JWT_ISSUER, audience: process.env.JWT_AUDIENCE },
  );
  process.stdout.write(token + '\n');
}

void main();
