import { Counter, type Registry } from 'prom-client';
import { CoalescedReads } from './coalesced-reads';
import { CoalescedTransactions } from './coalesced-transactions';
import type { FhirClient } from './fhir-client';

type Sharing = { maxBatch: number; maxInFlight: number };

/**
 * Makes the coalescers (CoalescedReads, CoalescedTransactions) of the services that share their FHIR requests, each
 * counted under its user's name: requests sent and the calls they carried (their ratio is the sharing), and shared
 * transactions the server refused (each then sent again alone).
 */
export class SharedFhirRequests {
  private readonly requests?: Counter<'user' | 'kind'>;
  private readonly calls?: Counter<'user' | 'kind'>;
  private readonly refused?: Counter<'user'>;

  constructor(
    private readonly fhir: FhirClient,
    registry?: Registry,
  ) {
    if (!registry) return;
    this.requests = new Counter({
      name: 'kc_fhir_shared_requests_total',
      help: 'Requests sent by the services that share theirs (kind: batch of reads, transaction)',
      labelNames: ['user', 'kind'],
      registers: [registry],
    });
    this.calls = new Counter({
      name: 'kc_fhir_shared_calls_total',
      help: 'Reads or transactions those requests carried (over kc_fhir_shared_requests_total: how much was shared)',
      labelNames: ['user', 'kind'],
      registers: [registry],
    });
    this.refused = new Counter({
      name: 'kc_fhir_shared_refused_total',
      help: 'Transactions that shared a request the FHIR server refused, each then sent again alone',
      labelNames: ['user'],
      registers: [registry],
    });
  }

  reads(user: string, sharing: Sharing): CoalescedReads {
    return new CoalescedReads(this.fhir, sharing, ({ sent }) => this.count(user, 'batch', sent));
  }

  transactions(user: string, sharing: Sharing): CoalescedTransactions {
    return new CoalescedTransactions(this.fhir, sharing, (event) => {
      if ('sent' in event) this.count(user, 'transaction', event.sent);
      else this.refused?.inc({ user }, event.refused);
    });
  }

  private count(user: string, kind: string, calls: number): void {
    this.requests?.inc({ user, kind });
    this.calls?.inc({ user, kind }, calls);
  }
}
