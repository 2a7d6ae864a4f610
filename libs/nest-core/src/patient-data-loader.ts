import { Injectable } from '@nestjs/common';
import type { Bundle, CarePlan, CareTeam, MedicationRequest, Patient, PlanDefinition, Task } from '@medplum/fhirtypes';
import {
  batchResult,
  CoalescedReads,
  includedOf,
  matchesOf,
  FhirClient,
  getEntry,
  searchEntries,
  SharedFhirRequests,
  searchResults,
  withRemainingPages,
} from '@kc/fhir';
import { patientDataQueries, personRecords, type ProtocolVariables } from '@kc/protocols';
import { linkedRecordsOf, recordReplacing, type PersonRecords } from './person-records';

/** A patient and the searchsets a PlanDefinition's inputs fetched; no patient when it does not exist on the server. */
export interface PatientData {
  patient?: Patient;
  data: ProtocolVariables;
  /** The patient's active CareTeams, when asked for (whose the new Tasks are: FOLLOW_UP_OWNER=care-team). */
  careTeams?: CareTeam[];
  /** The patient's open medication orders, when asked for (an approval must not order a session twice). */
  openOrders?: MedicationRequest[];
  /** With them, the Tasks approved on one of them (`Task:based-on`): the EHR's orders that are a session's. */
  openOrderSessions?: Task[];
  /** The patient's plans still holding care (active, draft, paused), when asked for (an enrolment: not twice). */
  plansHoldingCare?: CarePlan[];
  /** The record kept when the one asked for was merged away and deleted (`Patient/<id>`): `patient` is that one. */
  mergedInto?: string;
  /** The records of the same person `patient`'s links, as read (the guard's deceased check needs no read of its own). */
  links?: PersonRecords;
}

export interface LoadOptions {
  careTeams?: boolean;
  openOrders?: boolean;
  plans?: boolean;
  /** The patient's linked records, read already (by the guard, before an approval's checks): not read again. */
  links?: PersonRecords;
}

/**
 * Fetches what a PlanDefinition's inputs ask for from the FHIR server: the I/O half of $apply, and of the
 * contraindication checks asked again at approval and by the worker's sweep.
 */
@Injectable()
export class PatientDataLoader {
  /** Loads that arrive at once ($apply calls, approvals re-checking) share one batch request. */
  private readonly reads: CoalescedReads;

  constructor(
    private readonly fhir: FhirClient,
    shared: SharedFhirRequests,
  ) {
    this.reads = shared.reads('patient-data', { maxBatch: 32, maxInFlight: 2 });
  }

  /**
   * The Patient and every input's searchset in one batch (one round trip, not one per search; more only for an
   * input without a limit that has more than a page of matches); the patient is undefined when it does not exist on
   * the server. A search that fails fails the whole load. A patient whose record links other records of the same
   * person (linkedPatientRecords: a merge, records kept apart) is read again under all of them (one round trip more,
   * only then); one merged away and deleted, under the record kept, which names it (one search
   * more, only then). Since session 48. Given the linked records read already (`options.links`), one batch under all
   * of them (since session 50; before, an approval of a merged patient read them twice, and two batches).
   */
  async load(plan: PlanDefinition, patientId: string, options: LoadOptions = {}): Promise<PatientData> {
    if (options.links) {
      const read = await this.read(plan, patientId, options.links.linked, options);
      return read.patient
        ? { ...read, links: options.links }
        : this.load(plan, patientId, { ...options, links: undefined });
    }
    const read = await this.read(plan, patientId, [], options);
    if (!read.patient) {
      const kept = await recordReplacing(this.fhir, `Patient/${patientId}`);
      if (!kept?.id) return read;
      // Its links name the deleted one (that is how it was found): read under both.
      const links = await linkedRecordsOf(this.fhir, kept);
      return { ...(await this.read(plan, kept.id, links.linked, options)), mergedInto: `Patient/${kept.id}`, links };
    }
    const links = await linkedRecordsOf(this.fhir, read.patient);
    return { ...(links.linked.length ? await this.read(plan, patientId, links.linked, options) : read), links };
  }

  private async read(
    plan: PlanDefinition,
    patientId: string,
    linked: string[],
    options: LoadOptions,
  ): Promise<PatientData> {
    const subject = personRecords(patientId, linked).join(',');
    const queries = patientDataQueries(plan, patientId, linked);
    const careTeams = options.careTeams ? [getEntry('CareTeam', { subject, status: 'active', _count: 100 })] : [];
    const openOrders = options.openOrders
      ? [
          getEntry('MedicationRequest', {
            subject,
            intent: 'order',
            status: 'active,on-hold',
            _revinclude: 'Task:based-on',
            _count: 100,
          }),
        ]
      : [];
    const plans = options.plans ? [getEntry('CarePlan', { subject, status: 'active,draft,on-hold', _count: 100 })] : [];
    const answer = await this.reads.batch([
      getEntry(`Patient/${encodeURIComponent(patientId)}`),
      ...searchEntries(queries),
      ...careTeams,
      ...openOrders,
      ...plans,
    ]);
    const patient = batchResult<Patient>(answer.entry?.[0], 'Patient');
    if (!patient) return { data: {} };
    const data = await withRemainingPages(this.fhir, searchResults(answer, queries, 1), queries);
    const after = 1 + queries.length;
    const teams = options.careTeams ? batchResult<Bundle>(answer.entry?.[after], 'CareTeam search') : undefined;
    const orders = options.openOrders
      ? batchResult<Bundle>(answer.entry?.[after + careTeams.length], 'MedicationRequest search')
      : undefined;
    const holding = options.plans
      ? batchResult<Bundle>(answer.entry?.[after + careTeams.length + openOrders.length], 'CarePlan search')
      : undefined;
    return {
      patient,
      data,
      ...(options.careTeams ? { careTeams: matchesOf<CareTeam>(teams) } : {}),
      ...(options.openOrders
        ? { openOrders: matchesOf<MedicationRequest>(orders), openOrderSessions: includedOf<Task>(orders, 'Task') }
        : {}),
      ...(options.plans ? { plansHoldingCare: matchesOf<CarePlan>(holding) } : {}),
    };
  }
}
