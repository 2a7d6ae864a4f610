import { loadConfig } from '@kc/config';
import { FhirClient } from '@kc/fhir';
import { existingSubscriptionSearch, subscriptionsFor } from '../apps/api/src/events/fhir-subscriptions';

const USAGE = `usage: npm run fhir:subscriptions -- <medplum|hapi> <webhook endpoint, e.g. https://careplans.clinic/webhooks/fhir> [--create]
  Prints the FHIR Subscriptions the service needs (a transaction Bundle to POST yourself; it holds WEBHOOK_SECRET),
  or with --create writes them to FHIR_BASE_URL (each only if no Subscription with its criteria and endpoint exists).
`;

/**
 * The Subscriptions that tell the service at once of infusions, Tasks, answers, scores, conditions and plans, for a
 * Medplum or HAPI server: printed, or created on the configured FHIR server. Uses the service's own environment
 * (FHIR_BASE_URL and its auth, WEBHOOK_SECRET).
 */
async function main(): Promise<number> {
  const [flavour, endpoint, ...rest] = process.argv.slice(2);
  if ((flavour !== 'medplum' && flavour !== 'hapi') || !endpoint || !/^https?:\/\//.test(endpoint)) {
    process.stderr.write(USAGE);
    return 2;
  }
  const config = loadConfig();
  if (!config.webhookSecret) {
    process.stderr.write('WEBHOOK_SECRET is not set: the Subscriptions need the secret the webhook checks\n');
    return 1;
  }
  const subscriptions = subscriptionsFor({
    endpoint,
    secret: config.webhookSecret,
    flavour,
  });
  if (!rest.includes('--create')) {
    const bundle = {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: subscriptions.map((resource) => ({
        resource,
        request: {
          method: 'POST',
          url: 'Subscription',
          ifNoneExist: new URLSearchParams(existingSubscriptionSearch(resource)).toString(),
        },
      })),
    };
    process.stdout.write(`${JSON.stringify(bundle, null, 2)}\n`);
    return 0;
  }
  if (!config.fhirBaseUrl) {
    process.stderr.write('FHIR_BASE_URL is not set: the embedded store has no Subscriptions (the service polls it)\n');
    return 1;
  }
  const fhir = new FhirClient({ baseUrl: config.fhirBaseUrl, auth: config.fhirAuth, timeoutMs: config.fhirTimeoutMs });
  for (const subscription of subscriptions) {
    const { created } = await fhir.create(subscription, { ifNoneExist: existingSubscriptionSearch(subscription) });
    process.stdout.write(`${created ? 'created' : 'exists '}  ${subscription.criteria}\n`);
  }
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: Error) => {
    process.stderr.write(`${err.message}\n`);
    process.exit(1);
  },
);
