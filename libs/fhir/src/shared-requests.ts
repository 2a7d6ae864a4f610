import { Counter, Gauge, type Registry } from 'prom-client';
import type { MicroBatcherOptions } from '@kc/common';
import { CoalescedReads } from './coalesced-reads';
import { CoalescedTransactions } from './coalesced-transactions';
import type { FhirClient } from './fhir-client';

type Sharing = { maxBatch: number; maxInFlight: number };

/**
 * A shared request still unanswered after this long is waiting on a slow FHIR server, not sharing work: the calls
 * queued behind it go in another request instead (about 10x a shared request's usual time under load here).
 */
const STALL_AFTER_MS = 250;
/** Requests in flight at most per coalescer when every one is slow (each caller had a connection of its own before). */
const MAX_RUNNING_WHEN_STALLED = 16;

/**
 * Makes the coalescers (CoalescedReads, CoalescedTransactions) of the services that share their FHIR requests, each
 * counted under its user's name: requests sent and the calls they carried (their ratio is the sharing), shared
 * transactions the server refused (each then sent again alone), and shared requests that stalled on a slow server
 * (the calls behind each then went ahead in another request, so one slow request does not hold up the rest).
 */
export class SharedFhirRequests {
  private readonly requests?: Counter<'user' | 'kind'>;
  private readonly calls?: Counter<'user' | 'kind'>;
  private readonly refused?: Counter<'user'>;
  private readonly stalled?: Counter<'user' | 'kind'>;
  /** Every coalescer made, for the gauge of calls waiting. */
  private readonly made: { user: string; kind: string; coalescer: { waiting: number } }[] = [];

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
    this.stalled = new Counter({
      name: 'kc_fhir_shared_stalled_total',
      help: `Shared requests unanswered after ${STALL_AFTER_MS} ms (a slow FHIR server): the calls queued behind each went in another request`,
      labelNames: ['user', 'kind'],
      registers: [registry],
    });
    const made = this.made;
    new Gauge({
      name: 'kc_fhir_shared_waiting_calls',
      help: "Calls waiting for a shared FHIR request to go out (they wait while their coalescer's requests are all in flight)",
      labelNames: ['user', 'kind'],
      registers: [registry],
      collect() {
        this.reset();
        for (const { user, kind, coalescer } of made) this.inc({ user, kind }, coalescer.waiting);
      },
    });
  }

  reads(user: string, sharing: Sharing): CoalescedReads {
    const reads = new CoalescedReads(this.fhir, this.withStall(user, 'batch', sharing), ({ sent }) =>
      this.count(user, 'batch', sent),
    );
    this.made.push({ user, kind: 'batch', coalescer: reads });
    return reads;
  }

  transactions(user: string, sharing: Sharing): CoalescedTransactions {
    const transactions = new CoalescedTransactions(this.fhir, this.withStall(user, 'transaction', sharing), (event) => {
      if ('sent' in event) this.count(user, 'transaction', event.sent);
      else this.refused?.inc({ user }, event.refused);
    });
    this.made.push({ user, kind: 'transaction', coalescer: transactions });
    return transactions;
  }

  private withStall(user: string, kind: string, sharing: Sharing): MicroBatcherOptions {
    return {
      ...sharing,
      stall: {
        afterMs: STALL_AFTER_MS,
        maxRunning: Math.max(MAX_RUNNING_WHEN_STALLED, sharing.maxInFlight),
        onStalled: () => this.stalled?.inc({ user, kind }),
      },
    };
  }

  private count(user: string, kind: string, calls: number): void {
    this.requests?.inc({ user, kind });
    this.calls?.inc({ user, kind }, calls);
  }
}
