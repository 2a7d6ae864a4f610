import { Injectable } from '@nestjs/common';
import type { CarePlan, DetectedIssue, PlanDefinition, Task } from '@medplum/fhirtypes';
import { ProtocolCatalog } from '@kc/protocols';
import {
  codeDisplays,
  contraindicationCards,
  followUpTaskCards,
  mergedRecordsUnreadCards,
  sortCards,
  type CardOptions,
} from './cards';
import type { CdsRequest, CdsResponse, CdsServiceDefinition } from './cds-types';
import { followUpsToShow, pausedPlanCards } from './plan-status';
import {
  CARE_PLANS_QUERY,
  checkPatientId,
  CONTRAINDICATIONS_QUERY,
  PATIENT_QUERY,
  PrefetchResolver,
  openTasksQuery,
  prefetchTemplates,
  resourcesIn,
  type PrefetchQuery,
} from './prefetch';

export const PATIENT_VIEW_QUERIES: PrefetchQuery[] = [
  PATIENT_QUERY,
  openTasksQuery('followUps'),
  CONTRAINDICATIONS_QUERY,
  CARE_PLANS_QUERY,
];

/** patient-view: the patient's due and overdue follow-ups and every unresolved contraindication, as cards. */
@Injectable()
export class PatientViewService {
  readonly definition: CdsServiceDefinition = {
    hook: 'patient-view',
    id: 'ketamine-follow-ups',
    title: 'Ketamine infusion follow-ups and contraindications',
    description:
      "Shows the patient's due and overdue ketamine follow-up tasks (post-infusion checks, next sessions, boosters), " +
      'every unresolved contraindication to ketamine on record, and a ketamine care plan on hold.',
    prefetch: prefetchTemplates(PATIENT_VIEW_QUERIES),
  };

  private readonly displays: Record<string, string>;
  private readonly protocols: PlanDefinition[];

  constructor(
    private readonly prefetch: PrefetchResolver,
    catalog: ProtocolCatalog,
  ) {
    this.displays = codeDisplays(catalog.resources);
    this.protocols = catalog.planDefinitions();
  }

  async call(
    request: CdsRequest,
    options: Omit<CardOptions, 'displays'>,
    budget: AbortSignal,
    now = new Date(),
  ): Promise<CdsResponse & { counts: { prefetched: number; fetched: number }; patientsRead: string[] }> {
    const patientId = checkPatientId(request.context?.patientId);
    const { data, prefetched, fetched, linked, linksUnread } = await this.prefetch.resolve(
      PATIENT_VIEW_QUERIES,
      request,
      patientId,
      budget,
    );
    const cardOptions = { ...options, displays: this.displays };
    const carePlans = resourcesIn<CarePlan>(data[CARE_PLANS_QUERY.key], 'CarePlan');
    const followUps = followUpsToShow(resourcesIn<Task>(data.followUps, 'Task'), carePlans);
    const cards = sortCards([
      ...contraindicationCards(resourcesIn<DetectedIssue>(data.contraindications, 'DetectedIssue'), cardOptions),
      ...pausedPlanCards(carePlans, this.protocols, cardOptions),
      ...followUpTaskCards(followUps, now, cardOptions),
      ...mergedRecordsUnreadCards(patientId, linksUnread, cardOptions),
    ]);
    return { cards, counts: { prefetched, fetched }, patientsRead: [`Patient/${patientId}`, ...linked] };
  }
}
