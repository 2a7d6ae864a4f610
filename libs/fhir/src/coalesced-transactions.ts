import type { Bundle, BundleEntry } from '@medplum/fhirtypes';
import { MicroBatcher, settledOf, slicesOf, type MicroBatcherOptions } from '@kc/common';
import type { FhirClient } from './fhir-client';
import { FhirUnavailableError } from './fhir-errors';

/**
 * Medplum's server runs a transaction holding a conditional entry under SERIALIZABLE isolation and refuses one of
 * more entries than this (fhir-router's `maxSerializableTransactionEntries`).
 */
export const MAX_SERIALIZABLE_TRANSACTION_ENTRIES = 8;

/** Medplum's fhir-router takes at most 50 updates in one transaction. */
const MAX_UPDATES_PER_TRANSACTION = 50;

/**
 * Group commit for independent transactions (clinicians' decisions arriving at once): the transactions sent while
 * earlier ones are in flight go to the server as one transaction, and each caller gets the answer to its own entries,
 * so a busy service pays a request's fixed cost (HTTP, the server's commit) once per group. A lone transaction goes
 * at once, alone.
 *
 * Each caller's transaction stays all or nothing: a shared one that the server refuses (one caller's stale If-Match,
 * one invalid entry) lands nothing, and every transaction of it is sent again on its own, so each caller gets the
 * answer its own transaction gets; an unreachable server fails them all, as it would have each. Transactions that
 * cannot share are sent alone or in another group: one with a conditional entry (Medplum runs those under
 * SERIALIZABLE isolation, at most 8 entries), two writing the same resource or using the same fullUrl, and more than
 * Medplum's 50 updates in one.
 */
export class CoalescedTransactions {
  private readonly batches: MicroBatcher<BundleEntry[], Bundle>;

  constructor(
    private readonly fhir: FhirClient,
    options: MicroBatcherOptions,
    /** Told how many transactions each request to the server carried, and of each shared one refused. */
    private readonly observe: (event: { sent: number } | { refused: number }) => void = () => {},
  ) {
    this.batches = new MicroBatcher((transactions) => this.send(transactions), options);
  }

  /** Calls waiting for a request to the server (a gauge for operators). */
  get waiting(): number {
    return this.batches.queued;
  }

  transaction(entries: BundleEntry[]): Promise<Bundle> {
    return this.batches.submit(entries);
  }

  private async send(transactions: BundleEntry[][]): Promise<PromiseSettledResult<Bundle>[]> {
    const results = new Array<PromiseSettledResult<Bundle>>(transactions.length);
    await Promise.all(
      sharedGroups(transactions).map(async (group) => {
        const answers = await this.sendGroup(group.map((i) => transactions[i]));
        group.forEach((index, k) => (results[index] = answers[k]));
      }),
    );
    return results;
  }

  private async sendGroup(group: BundleEntry[][]): Promise<PromiseSettledResult<Bundle>[]> {
    this.observe({ sent: group.length });
    if (group.length === 1) return [await settledOf(() => this.fhir.transaction(group[0]))];
    let answer: Bundle;
    try {
      answer = await this.fhir.transaction(group.flat());
    } catch (err) {
      if (err instanceof FhirUnavailableError) return group.map(() => ({ status: 'rejected', reason: err }));
      this.observe({ refused: group.length });
      return Promise.all(group.map((entries) => settledOf(() => this.fhir.transaction(entries))));
    }
    return slicesOf(
      answer.entry ?? [],
      group.map((entries) => entries.length),
    ).map((entry) => ({ status: 'fulfilled', value: { ...answer, entry } }));
  }
}

/**
 * The transactions that can share one request, as groups of indices in arrival order: a transaction joins the first
 * group it can share with, or starts one.
 */
export function sharedGroups(transactions: BundleEntry[][]): number[][] {
  const groups: { members: number[]; targets: Set<string>; updates: number; alone: boolean }[] = [];
  transactions.forEach((entries, index) => {
    const targets = targetsOf(entries);
    const updates = entries.filter((e) => e.request?.method === 'PUT').length;
    // A conditional transaction neither joins a group nor lets another join its own.
    const alone = isConditional(entries);
    const group = alone
      ? undefined
      : groups.find(
          (g) =>
            !g.alone &&
            g.updates + updates <= MAX_UPDATES_PER_TRANSACTION &&
            [...targets].every((t) => !g.targets.has(t)),
        );
    if (!group) {
      groups.push({ members: [index], targets, updates, alone });
      return;
    }
    group.members.push(index);
    for (const t of targets) group.targets.add(t);
    group.updates += updates;
  });
  return groups.map((g) => g.members);
}

/** What a transaction writes or names: the resources it updates or deletes and its fullUrls. */
function targetsOf(entries: BundleEntry[]): Set<string> {
  const targets = new Set<string>();
  for (const e of entries) {
    if (e.fullUrl) targets.add(e.fullUrl);
    if (e.request && e.request.method !== 'POST' && e.request.method !== 'GET') targets.add(e.request.url);
  }
  return targets;
}

/** Medplum's test for a transaction needing SERIALIZABLE isolation (fhir-router batch preprocessing). */
function isConditional(entries: BundleEntry[]): boolean {
  return entries.some(
    (e) =>
      (e.request?.method === 'POST' && !!e.request.ifNoneExist) ||
      (['PUT', 'DELETE', 'PATCH'].includes(e.request?.method ?? '') && (e.request?.url ?? '').includes('?')),
  );
}
