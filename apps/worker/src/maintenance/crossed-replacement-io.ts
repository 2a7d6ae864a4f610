import type { Bundle, MedicationRequest, Resource, Task } from '@medplum/fhirtypes';
import { FhirClient, isStaleWrite, matchesOf, readAndSearchEach, searchEach } from '@kc/fhir';
import { ordersFollowedOn, orderTaskIdOf, whenWritten, type AuthorisableRequest } from '@kc/task-states';
import { serviceChangeEntries } from './withdrawal-writes';

/**
 * What the reconciliations of the EHR's replacements that crossed a change here (ClosingsCrossedByTheEhr,
 * DoseChangesCrossedByTheEhr) read and write alike.
 */

/** Patients per search of their open orders: a URL of a few KB. */
const PATIENTS_PER_SEARCH = 50;

/**
 * Of `sessions`, those whose patient has an open order of the EHR's replacing another: the only ones that can have an
 * EHR replacement left open, so the only ones whose orders the reconciliations of crossed replacements read. One search
 * per PATIENTS_PER_SEARCH patients.
 */
export async function withEhrReplacementsOpen(fhir: FhirClient, sessions: Task[]): Promise<Task[]> {
  const patients = [...new Set(sessions.flatMap((t) => t.for?.reference ?? []))];
  if (!patients.length) return [];
  const searches = [];
  for (let i = 0; i < patients.length; i += PATIENTS_PER_SEARCH)
    searches.push({
      name: `open-${i}`,
      resourceType: 'MedicationRequest' as const,
      params: {
        subject: patients.slice(i, i + PATIENTS_PER_SEARCH).join(','),
        status: 'active,on-hold',
        intent: 'order',
        _count: 200,
      },
      everyMatch: true,
    });
  const found = Object.values(await searchEach(fhir, searches)).flatMap((b) => matchesOf<MedicationRequest>(b));
  const replacing = new Set(
    found.filter((o) => !orderTaskIdOf(o) && ordersFollowedOn(o).length > 0).map((o) => o.subject?.reference),
  );
  return sessions.filter((t) => replacing.has(t.for?.reference));
}

/**
 * Each resource's versions, newest first, in one batch; a history the server pages (HAPI, by 20) read whole, one
 * resource at a time (when it was closed, or first written, may be on a later page).
 */
export async function historiesOf(fhir: FhirClient, refs: string[]): Promise<Map<string, Resource[]>> {
  const { read } = await readAndSearchEach(
    fhir,
    refs.map((r) => `${r}/_history`),
    [],
  );
  const histories = new Map<string, Resource[]>();
  for (const [i, ref] of refs.entries()) {
    const history = read[i] as Bundle | undefined;
    const [resourceType, id] = ref.split('/');
    histories.set(
      ref,
      history?.link?.some((l) => l.relation === 'next')
        ? await fhir.versionsOf(resourceType as Resource['resourceType'], id)
        : (history?.entry ?? []).flatMap((e) => e.resource ?? []),
    );
  }
  return histories;
}

/** When each order was first written, by `Type/id`, from their histories (historiesOf). */
export function writtenAtOf(
  orders: { order: Resource }[],
  histories: Map<string, Resource[]>,
): Map<string, string | undefined> {
  return new Map(
    orders.map(({ order }) => {
      const ref = `${order.resourceType}/${order.id}`;
      return [ref, whenWritten(histories.get(ref) ?? [])];
    }),
  );
}

/**
 * One session's crossed orders closed as the reconciliation decided, If-Match on what was read, with a Provenance
 * naming the service: how many. 0 when one of them changed meanwhile (the next run looks again).
 */
export async function closeCrossed(
  fhir: FhirClient,
  task: Task,
  crossed: { read: AuthorisableRequest; closed: AuthorisableRequest }[],
  why: { activity: string; reason: string; sources?: string[] },
  now: Date,
): Promise<number> {
  if (!crossed.length) return 0;
  try {
    await fhir.transaction(
      serviceChangeEntries(
        crossed.map(({ read, closed }) => ({ resource: closed, read })),
        task,
        why,
        now,
      ),
    );
    return crossed.length;
  } catch (err) {
    if (!isStaleWrite(err)) throw err;
    return 0;
  }
}
