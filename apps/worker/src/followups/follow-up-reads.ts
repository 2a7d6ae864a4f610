import type {
  Bundle,
  CarePlan,
  CareTeam,
  CommunicationRequest,
  DetectedIssue,
  Medication,
  MedicationAdministration,
  MedicationRequest,
  Patient,
  PlanDefinition,
  Procedure,
  Task,
} from '@medplum/fhirtypes';
import { slicesOf } from '@kc/common';
import {
  batchResult,
  FhirClient,
  getEntry,
  includedOf,
  matchesOf,
  searchEntries,
  searchResults,
  withRemainingPages,
  type NamedSearch,
} from '@kc/fhir';
import {
  administrationsSearchParams,
  carePlanReferencesOf,
  isUnlinkedInfusion,
  toInfusionCompleted,
  type AdministrationRecords,
  type InfusionCompleted,
  type InfusionDefinition,
} from '@kc/followups';
import {
  flattenActions,
  INFUSION_COMPLETED_TRIGGER,
  overriddenContraindications,
  patientDataQueries,
  personRecords,
  TASK_KEY_SYSTEM,
  type DefinitionResolver,
  taskKey,
  triggeredActions,
} from '@kc/protocols';
import { linkedRecordsOf } from '@kc/nest-core';
import { OPEN_STATUS_SEARCH } from '@kc/task-states';
import { infusionPlanAmong, type ProtocolSource } from './infusion-plan';

/**
 * The follow-up service's two reads, for one event or a batch of them: (1) the Procedures with their CarePlans
 * (`_include`), (2) one batch of everything else the rules read. A batch of events costs the same two requests.
 */

/** What a followed-up infusion event comes with, once read. */
export interface EventContext {
  procedure: Procedure;
  event: InfusionCompleted;
  carePlan: CarePlan;
  plan: PlanDefinition;
  /** What the plan's actions name (its ActivityDefinitions), from the catalog or the FHIR server. */
  definitions: DefinitionResolver;
  infusion: InfusionDefinition;
}

/** Everything the rules read about an event besides its Procedure and CarePlan. */
export type EventSurroundings = Awaited<ReturnType<typeof readAround>>[number];

export type { ProtocolSource };

/**
 * An infusion of a plan whose protocol is nowhere to be read (its PlanDefinition deleted from the FHIR server): its
 * follow-ups (the post-infusion check) cannot be planned, and must not be lost, so its job fails, is retried (the
 * protocol may be posted again meanwhile) and then waits in the dead letters for an operator. Ids only: no patient data.
 */
export class ProtocolNotFoundError extends Error {
  constructor(carePlanId: string, canonical: string | undefined) {
    super(
      `CarePlan/${carePlanId} instantiates ${canonical ?? 'no protocol'}: neither in fhir-profiles/ nor on the FHIR ` +
        'server, so its infusion cannot be followed up; post that PlanDefinition again: the job is tried again by itself (or retry it now)',
    );
    this.name = 'ProtocolNotFoundError';
  }
}

/** An event as read: followed up, ignored (why), failed (the error its job fails with), or naming no plan. */
export type ReadEvent = EventContext | { ignored: string } | { failed: Error } | { unlinked: Procedure };

/**
 * Round trip 1: each Procedure with its CarePlan, and whether this service follows it up at all (or why not; or the
 * error its job fails with; or, naming no CarePlan, that its plan is to be looked for). A protocol outside the catalog costs a read of its definitions from the FHIR server,
 * kept 30 s by the source.
 */
export async function readEvents(
  fhir: FhirClient,
  protocols: ProtocolSource,
  procedureIds: string[],
): Promise<Map<string, ReadEvent>> {
  const found = await fhir.search<Procedure | CarePlan>('Procedure', {
    _id: procedureIds.join(','),
    _include: 'Procedure:based-on',
    _count: procedureIds.length,
  });
  const procedures = new Map(
    matchesOf<Procedure>(found)
      .filter((r) => r.resourceType === 'Procedure')
      .map((p) => [p.id!, p]),
  );
  const carePlans = new Map(
    includedOf<CarePlan>(found)
      .filter((r) => r.resourceType === 'CarePlan')
      .map((c) => [c.id!, c]),
  );
  const contexts = procedureIds.map(async (id): Promise<[string, ReadEvent]> => {
    const followed = followedEvent(procedures.get(id), carePlans);
    if ('ignored' in followed || 'unlinked' in followed) return [id, followed];
    // The protocol: the version it was applied with, else the latest of its url (a version the EHR replaced in place).
    const found = await infusionPlanAmong(protocols, followed.procedure, followed.carePlans);
    if ('ignored' in found) return [id, found];
    if ('none' in found) return [id, { unlinked: followed.procedure }];
    if ('notFound' in found)
      return [id, { failed: new ProtocolNotFoundError(found.notFound.id!, found.notFound.instantiatesCanonical?.[0]) }];
    const { carePlan, protocol, infusion } = found;
    const event = { ...followed.event, carePlanId: carePlan.id! };
    return [id, { ...followed, event, carePlan, plan: protocol.plan, definitions: protocol.definitions, infusion }];
  });
  return new Map(await Promise.all(contexts));
}

/**
 * An infusion's completion, with the plans it names (infusionPlanAmong finds which it is a session of), or why the
 * event is not followed up.
 */
function followedEvent(
  procedure: Procedure | undefined,
  carePlans: Map<string, CarePlan>,
):
  | (Pick<EventContext, 'procedure' | 'event'> & { carePlans: CarePlan[] })
  | { ignored: string }
  | { unlinked: Procedure } {
  if (!procedure) return { ignored: 'Procedure not found' };
  const check = toInfusionCompleted(procedure);
  // Naming no plan: its plan is looked for (linkUnlinkedInfusion) before it is followed up.
  if (!check.ok) return isUnlinkedInfusion(procedure) ? { unlinked: procedure } : { ignored: check.reason };
  const named = carePlanReferencesOf(procedure).flatMap((ref) => carePlans.get(ref.slice('CarePlan/'.length)) ?? []);
  if (!named.length) return { ignored: 'CarePlan not found' };
  // A stopped plan takes no follow-ups, but a session the pump gave under it is still answered (handleRound).
  return { procedure, event: check.event, carePlans: named };
}

/**
 * Round trip 2: for each event, everything the rules read besides the Procedure (its CarePlan again), in one batch;
 * `careTeams`: the patient's active CareTeams too (FOLLOW_UP_OWNER=care-team).
 */
export async function readAround(fhir: FhirClient, contexts: EventContext[], options: { careTeams?: boolean } = {}) {
  const queries = contexts.map(({ event, carePlan, plan }) => {
    const searches = [...eventSearches(event, carePlan, plan), ...(options.careTeams ? [careTeamSearch(event)] : [])];
    const data = patientDataQueries(plan, event.patientId);
    const entries = [
      ...searchEntries(searches),
      ...searchEntries(data),
      getEntry(`Patient/${encodeURIComponent(event.patientId)}`),
      getEntry(`CarePlan/${encodeURIComponent(carePlan.id!)}`),
    ];
    return { searches, data, entries };
  });
  const response = await fhir.batch(queries.flatMap((q) => q.entries));
  const parts = slicesOf(
    response.entry ?? [],
    queries.map((q) => q.entries.length),
  );
  return Promise.all(
    queries.map(async ({ searches, data }, i) => {
      // This event's part of the answer, in the order of its entries: searches, patient data, Patient, CarePlan.
      const part: Bundle = { ...response, entry: parts[i] };
      // A search with more than a page of matches (rare: a CarePlan with over 1,000 infusions) is read whole.
      const [found, patientData] = await Promise.all([
        withRemainingPages(fhir, searchResults(part, searches), searches),
        withRemainingPages(fhir, searchResults(part, data, searches.length), data),
      ]);
      const patient = batchResult<Patient>(parts[i][searches.length + data.length], 'Patient');
      // Read again after the first round trip: another batch of this process may have written it since.
      const carePlan = batchResult<CarePlan>(parts[i][searches.length + data.length + 1], 'CarePlan');
      const issues = matchesOf<DetectedIssue>(found.issues);
      // The person's other records (a merge): what was recorded under them too, one batch more (since session 48).
      const { linked } = await linkedRecordsOf(fhir, patient);
      const underAll = linked.length ? await readUnderLinkedRecords(fhir, contexts[i], linked) : undefined;
      if (underAll) Object.assign(found, underAll.found);
      return {
        carePlan,
        history: matchesOf<Procedure>(found.history),
        patientData: underAll?.patientData ?? patientData,
        patient,
        overridden: overriddenContraindications(issues),
        openTasks: matchesOf<Task>(found.openTasks),
        written: matchesOf<Task>(found.written),
        issues,
        reminders: matchesOf<CommunicationRequest>(found.reminders),
        orders: matchesOf<MedicationRequest>(found.orders),
        ordersAdministered: includedOf<MedicationAdministration>(found.orders, 'MedicationAdministration'),
        // What was recorded of this infusion (the rate it was titrated to at the pump): the next session starts there.
        given: administrationRecords(found.given),
        careTeams: matchesOf<CareTeam>(found.careTeams),
      };
    }),
  );
}

/**
 * An event's patient data, open orders and what the pump gave read again under every record of the person (the
 * patient's and those it links: linkedPatientRecords), for a patient whose records a merge left apart: a
 * contraindication recorded under the other is theirs, and so are an order written and a session given under it.
 */
async function readUnderLinkedRecords(fhir: FhirClient, { event, carePlan, plan }: EventContext, linked: string[]) {
  const data = patientDataQueries(plan, event.patientId, linked);
  const byPatient = eventSearches(event, carePlan, plan, linked).filter((s) => PATIENT_SEARCHES.includes(s.name));
  const answer = await fhir.batch([...searchEntries(byPatient), ...searchEntries(data)]);
  const [found, patientData] = await Promise.all([
    withRemainingPages(fhir, searchResults(answer, byPatient), byPatient),
    withRemainingPages(fhir, searchResults(answer, data, byPatient.length), data),
  ]);
  return { found, patientData };
}

/** An event's searches by its patient (the rest are by its plan): read again under every record of the person. */
const PATIENT_SEARCHES = ['orders', 'given'];

/** The patient's care teams now: whose the follow-ups are, by the role each names as performer. */
function careTeamSearch(event: InfusionCompleted): NamedSearch {
  return {
    name: 'careTeams',
    resourceType: 'CareTeam',
    params: { subject: `Patient/${event.patientId}`, status: 'active', _count: PAGE },
    everyMatch: true,
  };
}

function eventSearches(
  event: InfusionCompleted,
  carePlan: CarePlan,
  plan: PlanDefinition,
  linked: string[] = [],
): NamedSearch[] {
  const carePlanRef = `CarePlan/${carePlan.id}`;
  // Every Task this infusion could have produced already (a retry, a duplicate event): keys are deterministic.
  const candidateKeys = followUpKeys(plan, carePlan.id!, event.procedureId);
  return [
    {
      name: 'history',
      resourceType: 'Procedure',
      params: { 'based-on': carePlanRef, status: 'completed', _count: PAGE },
    },
    { name: 'issues', resourceType: 'DetectedIssue', params: { implicated: carePlanRef, _count: PAGE } },
    {
      name: 'openTasks',
      resourceType: 'Task',
      // on-hold: approved, its order held for a contraindication; an infusion given anyway still fulfils it. In progress
      // (or accepted) in the EHR: approved and being given, answered by this infusion as a ready one is.
      params: { 'based-on': carePlanRef, status: OPEN_STATUS_SEARCH, _count: PAGE },
    },
    {
      name: 'reminders',
      resourceType: 'CommunicationRequest',
      params: { 'based-on': carePlanRef, status: 'active', _count: PAGE },
    },
    {
      // The patient's orders still to be given: those of the Tasks this infusion answers are closed with them; with
      // what the pump recorded of them (a session it began is answered by its own infusion only).
      name: 'orders',
      resourceType: 'MedicationRequest',
      params: {
        subject: personRecords(event.patientId, linked).join(','),
        intent: 'order',
        status: 'active,on-hold',
        _revinclude: 'MedicationAdministration:request',
        _count: PAGE,
      },
    },
    ...givenSearch(event, linked),
    {
      name: 'written',
      resourceType: 'Task',
      params: { identifier: candidateKeys.join(',') || 'none|none', _count: PAGE },
    },
  ].map((s) => ({ ...s, everyMatch: true }));
}

/**
 * The keys (`system|value`, as an identifier search names them) of every Task an infusion's follow-up could write on
 * this plan: deterministic, so a search finds what it wrote, whoever ran it.
 */
export function followUpKeys(plan: PlanDefinition, carePlanId: string, procedureId: string): string[] {
  return triggeredActions(plan, INFUSION_COMPLETED_TRIGGER)
    .flatMap((a) => flattenActions([a]))
    .filter((a) => a.id)
    .map((a) => `${TASK_KEY_SYSTEM}|${taskKey(carePlanId, procedureId, a.id!)}`);
}

/**
 * Of these infusions charted for the same time as an event's (sameTimeInfusions), those already followed up: a Task
 * keyed to one of them is on record. One search for them all; none for none.
 */
export async function followedUpAmong(
  fhir: FhirClient,
  plan: PlanDefinition,
  carePlanId: string,
  procedures: Procedure[],
): Promise<Procedure[]> {
  const keyed = procedures.map((procedure) => ({ procedure, keys: followUpKeys(plan, carePlanId, procedure.id!) }));
  const keys = keyed.flatMap((k) => k.keys);
  if (!keys.length) return [];
  const written = await fhir.searchAll<Task>('Task', { identifier: keys.join(','), _count: PAGE });
  const values = new Set(written.flatMap((t) => (t.identifier ?? []).map((i) => `${i.system}|${i.value}`)));
  return keyed.filter((k) => k.keys.some((key) => values.has(key))).map((k) => k.procedure);
}

/** What the EHR recorded of the infusion (administrationsSearchParams): the rate it was titrated to at the pump. */
function givenSearch(event: InfusionCompleted, linked: string[] = []): NamedSearch[] {
  const params = administrationsSearchParams(event.patientId, event.performed);
  const patient = personRecords(event.patientId, linked).join(',');
  return params
    ? [{ name: 'given', resourceType: 'MedicationAdministration', params: { ...params, patient, _count: PAGE } }]
    : [];
}

/** The administrations an infusion's search found, with the orders and bags they name. */
export function administrationRecords(found: Bundle | undefined): AdministrationRecords {
  return {
    administrations: matchesOf<MedicationAdministration>(found),
    orders: includedOf<MedicationRequest>(found, 'MedicationRequest'),
    medications: includedOf<Medication>(found, 'Medication'),
  };
}

const PAGE = 1000;
