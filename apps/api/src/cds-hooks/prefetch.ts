import { Injectable } from '@nestjs/common';
import type { Bundle, Patient, Resource, ResourceType } from '@medplum/fhirtypes';
import { badRequest, isResourceId } from '@kc/common';
import { FhirClient, FhirHttpError, hasMorePages, searchWhole } from '@kc/fhir';
import { linkedRecordsOf } from '@kc/nest-core';
import { OPEN_STATUS_SEARCH } from '@kc/task-states';
import type { CdsRequest } from './cds-types';
import { EhrFhirServer } from './ehr-fhir-server';

/**
 * Prefetch: the queries a hook service declares in discovery (as templates with {{context.patientId}}), and
 * resolving them for one call: what the CDS client prefetched is used as sent; absent or null keys are fetched, and
 * so is a query that wants every match when the client sent one page of it (a next link): the union is judged.
 * Fetched from the request's fhirServer for patient data when the deployment trusts it (EhrFhirServer), else, and
 * always for the service's own records, from the configured FHIR server.
 */

export const PATIENT_TOKEN = '{{context.patientId}}';
const PLACEHOLDER = 'KCPATIENTIDPLACEHOLDER';

export interface PrefetchQuery {
  key: string;
  resourceType: string;
  /** Patient/{{context.patientId}}: declared so clients may send it; checked against the context, never fetched. */
  readPatient?: boolean;
  /** Search parameters; PATIENT_TOKEN in a value stands for the patient id. */
  params?: Record<string, string>;
  /** An EHR record (patient data), read from the EHR's fhirServer when it is trusted (EhrFhirServer). */
  fromEhr?: boolean;
  /**
   * Every match is wanted (a contraindication may be on any page): fetched here, the search's next pages are
   * followed; prefetched with more pages than sent, it is topped up from where it would be fetched.
   */
  everyMatch?: boolean;
}

/** The context patient, declared for clients that send it (checked against the context, never fetched). */
export const PATIENT_QUERY: PrefetchQuery = { key: 'patient', resourceType: 'Patient', readPatient: true };

/** Every DetectedIssue of the patient (a contraindication may be on any page). */
export const CONTRAINDICATIONS_QUERY: PrefetchQuery = {
  key: 'contraindications',
  resourceType: 'DetectedIssue',
  params: { patient: `Patient/${PATIENT_TOKEN}`, _count: '1000' },
  everyMatch: true,
};

/**
 * The patient's open Tasks under `key`, in every open status: an approved session the EHR accepted or began is still
 * the patient's, and its appointment books it (since session 47; before, only draft and ready were asked for).
 */
export function openTasksQuery(key: string): PrefetchQuery {
  return {
    key,
    resourceType: 'Task',
    params: { patient: `Patient/${PATIENT_TOKEN}`, status: OPEN_STATUS_SEARCH, _count: '200' },
  };
}

/** The patient's care plans (this service's: a ketamine plan paused or stopped is said on an order). */
export const CARE_PLANS_QUERY: PrefetchQuery = {
  key: 'carePlans',
  resourceType: 'CarePlan',
  params: { subject: `Patient/${PATIENT_TOKEN}`, _count: '100' },
  everyMatch: true,
};

/**
 * The patient's open medication orders (this service's approved sessions, and the EHR's own on a shared server): a
 * ketamine order signed for a time another already covers is said on it.
 */
export const OPEN_ORDERS_QUERY: PrefetchQuery = {
  key: 'openOrders',
  resourceType: 'MedicationRequest',
  params: { subject: `Patient/${PATIENT_TOKEN}`, intent: 'order', status: 'active,on-hold', _count: '100' },
  everyMatch: true,
};

/** The template a CDS client fills in, e.g. DetectedIssue?patient=Patient/{{context.patientId}}&_count=1000. */
export function prefetchTemplate(query: PrefetchQuery): string {
  if (query.readPatient) return `${query.resourceType}/${PATIENT_TOKEN}`;
  const search = Object.entries(query.params ?? {})
    .map(([name, value]) => {
      const encoded = encodeURIComponent(value.split(PATIENT_TOKEN).join(PLACEHOLDER))
        .replace(/%2F/g, '/')
        .replace(/%2C/g, ',')
        .replace(/%3A/g, ':')
        .replace(/%7C/g, '|');
      return `${name}=${encoded.split(PLACEHOLDER).join(PATIENT_TOKEN)}`;
    })
    .join('&');
  return `${query.resourceType}?${search}`;
}

export function prefetchTemplates(queries: PrefetchQuery[]): Record<string, string> {
  return Object.fromEntries(queries.map((q) => [q.key, prefetchTemplate(q)]));
}

/** A FHIR id as context.patientId must carry one; anything else is refused before it reaches a query. */
export function checkPatientId(value: unknown, where = 'context.patientId'): string {
  if (!isResourceId(value)) throw badRequest(`${where} must be a FHIR id`, [where]);
  return value;
}

/**
 * True when a record is about the patient (its subject, patient or for reference names them); `patientIds`: the
 * person's records (the context patient's and those it links), any of which it may name.
 */
export function aboutPatient(resource: Resource, patientIds: string | string[]): boolean {
  const r = resource as {
    subject?: { reference?: string };
    patient?: { reference?: string };
    for?: { reference?: string };
  };
  const ref = r.subject?.reference ?? r.patient?.reference ?? r.for?.reference;
  return [patientIds].flat().some((id) => ref === `Patient/${id}` || Boolean(ref?.endsWith(`/Patient/${id}`)));
}

/** The Bundle with only the entries about the patient: a prefetched Bundle cannot bring in someone else's data. */
export function onlyAboutPatient(bundle: Bundle, patientIds: string | string[]): Bundle {
  return { ...bundle, entry: (bundle.entry ?? []).filter((e) => e.resource && aboutPatient(e.resource, patientIds)) };
}

export interface ResolvedPrefetch {
  /** key -> the Patient read, or the searchset Bundle (entries about the patient only). */
  data: Record<string, Resource | Bundle | undefined>;
  /** How many keys came from the request and how many were fetched here (for logs: counts, no data). */
  prefetched: number;
  fetched: number;
  /** The person's other records the patient's links (`Patient/<id>`), whose data each key holds too. */
  linked: string[];
  /**
   * Why the person's other records could not be followed, when the server refused a Patient read (`HTTP 403`, say):
   * the data is the patient's record's alone, and the check says so (since session 51; before, nothing did).
   */
  linksUnread?: string;
}

/** The person's other records, or why they could not be followed. */
type PersonLinks = Pick<ResolvedPrefetch, 'linked' | 'linksUnread'>;

@Injectable()
export class PrefetchResolver {
  constructor(private readonly servers: EhrFhirServer) {}

  /**
   * `budget`: the call's time budget; a read it cuts short throws FhirOutOfTimeError. With the Patient among the
   * queries, the person's other records it links (a merge: linkedPatientRecords) are read too, each key's query once
   * per such record, and judged with the patient's (since session 49; before, a pregnancy recorded under the record
   * kept was not seen on an order for the record merged away); `linked`: those records, known already (no Patient
   * read).
   */
  async resolve(
    queries: PrefetchQuery[],
    request: CdsRequest,
    patientId: string,
    budget: AbortSignal,
    options: { linked?: string[] } = {},
  ): Promise<ResolvedPrefetch> {
    const { ehr, own } = this.servers.clientsFor(request, budget);
    let prefetched = 0;
    let fetched = 0;
    const sent = request.prefetch && typeof request.prefetch === 'object' ? request.prefetch : {};
    const patientQuery = queries.find((q) => q.readPatient);
    const sentPatient = patientQuery && sent[patientQuery.key];
    const sentOfContext = sentPatient?.resourceType === 'Patient' && sentPatient.id === patientId;
    // Read beside the queries; none for a Patient sent that is not the context patient's (refused below, 400).
    const linking: Promise<PersonLinks> = options.linked
      ? Promise.resolve({ linked: options.linked })
      : !patientQuery || (sentPatient?.resourceType === 'Patient' && !sentOfContext)
        ? Promise.resolve({ linked: [] })
        : this.personLinksOf(ehr, patientId, sentOfContext ? sentPatient : undefined);
    // Awaited after the queries: a read failing meanwhile is not an unhandled rejection.
    linking.catch(() => undefined);
    const entries = await Promise.all(
      queries.map(async (q): Promise<[string, Resource | Bundle | undefined]> => {
        const given = sent[q.key];
        if (q.readPatient) {
          if (given && given.resourceType === q.resourceType) {
            if (given.id !== patientId) throw badRequest(`prefetch.${q.key} is not Patient/${patientId}`);
            prefetched++;
            return [q.key, given];
          }
          // Only used to check a prefetched Patient is the context patient: no need to read it when not sent.
          return [q.key, undefined];
        }
        const partial = given?.resourceType === 'Bundle' && q.everyMatch && hasMorePages(given);
        if (given && given.resourceType === 'Bundle' && !partial) {
          prefetched++;
          return [q.key, onlyAboutPatient(given, patientId)];
        }
        fetched++;
        const bundle = await this.fetch(q.fromEhr ? ehr : own, q, patientId);
        // The client's first page and every page here: what either holds counts (the EHR's page may hold records the
        // configured server does not).
        const judged = partial ? union(given, bundle) : bundle;
        return [q.key, onlyAboutPatient(judged, patientId)];
      }),
    );
    const { linked, linksUnread } = await linking;
    if (!linked.length) return { data: Object.fromEntries(entries), prefetched, fetched, linked, linksUnread };
    const linkedIds = linked.map((r) => r.slice('Patient/'.length));
    const person = [patientId, ...linkedIds];
    const data = Object.fromEntries(
      await Promise.all(
        entries.map(async ([key, value]): Promise<[string, Resource | Bundle | undefined]> => {
          const q = queries.find((query) => query.key === key)!;
          if (q.readPatient || value?.resourceType !== 'Bundle') return [key, value];
          const under = await Promise.all(linkedIds.map((id) => this.fetch(q.fromEhr ? ehr : own, q, id)));
          fetched += under.length;
          return [key, onlyAboutPatient(under.reduce(union, value as Bundle), person)];
        }),
      ),
    );
    return { data, prefetched, fetched, linked, linksUnread };
  }

  /**
   * The records the patient's record links, read from where the EHR's records are; none when the server does not give
   * the Patient (missing; refused, and then why: the check runs on the patient's own record, as before session 49). A
   * server that does not answer fails the call's read as any other query's would.
   */
  private async personLinksOf(ehr: FhirClient, patientId: string, sent?: Patient): Promise<PersonLinks> {
    try {
      return {
        linked: (await linkedRecordsOf(ehr, sent ?? (await ehr.readIfExists<Patient>('Patient', patientId)))).linked,
      };
    } catch (err) {
      if (err instanceof FhirHttpError) return { linked: [], linksUnread: `HTTP ${err.status}` };
      throw err;
    }
  }

  private fetch(fhir: FhirClient, q: PrefetchQuery, patientId: string): Promise<Bundle> {
    const params = Object.fromEntries(
      Object.entries(q.params ?? {}).map(([k, v]) => [k, v.split(PATIENT_TOKEN).join(patientId)]),
    );
    const type = q.resourceType as ResourceType;
    return q.everyMatch ? searchWhole(fhir, type, params) : fhir.search(type, params);
  }
}

/** The first Bundle's entries, then the second's that name a resource the first does not hold. */
function union(first: Bundle, second: Bundle): Bundle {
  const key = (r: Resource | undefined) => `${r?.resourceType}/${r?.id}`;
  const held = new Set((first.entry ?? []).map((e) => key(e.resource)));
  return {
    ...first,
    link: undefined,
    entry: [...(first.entry ?? []), ...(second.entry ?? []).filter((e) => !held.has(key(e.resource)))],
  };
}

export function resourcesIn<T extends Resource>(value: Resource | Bundle | undefined, type: T['resourceType']): T[] {
  if (!value || value.resourceType !== 'Bundle') return [];
  return ((value as Bundle).entry ?? []).flatMap((e) => (e.resource?.resourceType === type ? [e.resource as T] : []));
}
