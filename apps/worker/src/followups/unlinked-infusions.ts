import type {
  BundleEntry,
  CarePlan,
  DetectedIssue,
  MedicationAdministration,
  MedicationRequest,
  Procedure,
  Task,
} from '@medplum/fhirtypes';
import { FhirClient, includedOf, matchesOf, updateEntry } from '@kc/fhir';
import { personRecordsOf } from '@kc/nest-core';
import {
  administrationsSearchParams,
  carePlanReferenceOf,
  ordersNamingNoPlan,
  ordersPlans,
  followsUpInfusions,
  infusionDefinitionFor,
  linkedToPlan,
  performedOf,
  planOfUnlinkedInfusion,
  type PlanCandidate,
  type UnlinkedInfusionPlan,
} from '@kc/followups';
import {
  contraindicationState,
  INFUSION_LINKED_ON_EVIDENCE,
  INFUSION_NOT_LINKED_KEY_SYSTEM,
  infusionNotLinkedIssue,
  plansImplicatedBy,
  resolvedInfusionNotLinked,
} from '@kc/protocols';
import { changeProvenance, THIS_SERVICE } from '@kc/task-states';
import type { ProtocolSource } from './infusion-plan';

/**
 * An infusion an EHR recorded naming no CarePlan (planOfUnlinkedInfusion): the patient's record read, and their plans
 * under it and the records of the same person it links (a merge; one search); the pump's records around it and the
 * plans' Tasks when it names no protocol (two searches at once; two more, the patient's orders and the Tasks approved
 * on them, when those records name an EHR's own order; a history read of an order they name that was deleted since);
 * and when one plan is tied to it, the plan added to its
 * `basedOn` (If-Match on the version read) with a Provenance naming the service and what tied them, in one transaction,
 * which also resolves the infusion's `infusion-not-linked` issue if an earlier look raised one (one search more):
 * `released`, the plans it held, to check again. The follow-up then reads it again and goes on as for any infusion:
 * four to seven round trips more than a linked one.
 *
 * Nothing ties it, but the patient's open plans follow up infusions of its code: it may be one of their sessions, so
 * an `infusion-not-linked` issue is recorded (once, conditional on its key) on those plans, `held`: checked again by
 * the caller, so their approved orders are held and the clinic told, until a clinician links it or says it was not
 * (since session 47; before, it was ignored and nobody was told). Ids only in what it answers: no patient data.
 */
export async function linkUnlinkedInfusion(
  fhir: FhirClient,
  protocols: ProtocolSource,
  procedure: Procedure & { id: string },
  now: Date,
  zone?: string,
): Promise<{ linked: string; released: string[] } | { ignored: string; held: string[] }> {
  const found = await planTiedToUnlinkedInfusion(fhir, protocols, procedure);
  if ('why' in found) {
    if (!found.mayBe.length) return { ignored: found.why, held: [] };
    await fhir.create(
      infusionNotLinkedIssue({
        procedure,
        carePlans: found.mayBe,
        patient: { reference: procedure.subject.reference },
        identified: now.toISOString(),
        zone,
      }),
      { ifNoneExist: { identifier: notLinkedKey(procedure.id) } },
    );
    return { ignored: `${found.why}; a clinician is asked to link it`, held: found.mayBe };
  }
  const issue = await unresolvedNotLinkedIssue(fhir, procedure.id);
  const provenance = changeProvenance({
    targets: [
      { reference: `Procedure/${procedure.id}` },
      ...(issue ? [{ reference: `DetectedIssue/${issue.id}` }] : []),
    ],
    who: THIS_SERVICE,
    activity: 'link the infusion to its care plan',
    now,
    reason: `It named no care plan; ${found.evidence}`,
  });
  provenance.entity = [{ role: 'source', what: { reference: found.source } }];
  const entries: BundleEntry[] = [
    updateEntry(linkedToPlan(procedure, found.carePlan), procedure.meta?.versionId),
    ...(issue
      ? [
          updateEntry(
            resolvedInfusionNotLinked(
              issue,
              INFUSION_LINKED_ON_EVIDENCE,
              `Linked to CarePlan/${found.carePlan.id}: ${found.evidence}`,
              now.toISOString(),
            ),
            issue.meta?.versionId,
          ),
        ]
      : []),
    { resource: provenance, request: { method: 'POST', url: 'Provenance' } },
  ];
  await fhir.transaction(entries);
  return { linked: `CarePlan/${found.carePlan.id}`, released: issue ? plansImplicatedBy(issue) : [] };
}

/** The `infusion-not-linked` issue of an infusion, as a search names it. */
export function notLinkedKey(procedureId: string): string {
  return `${INFUSION_NOT_LINKED_KEY_SYSTEM}|Procedure/${procedureId}`;
}

/** The infusion's `infusion-not-linked` issue while it is unresolved (an earlier look raised it); one search. */
export async function unresolvedNotLinkedIssue(
  fhir: FhirClient,
  procedureId: string,
): Promise<(DetectedIssue & { id: string }) | undefined> {
  const [issue] = await fhir.searchAll<DetectedIssue>('DetectedIssue', { identifier: notLinkedKey(procedureId) });
  return issue?.id && contraindicationState(issue) === 'unresolved'
    ? (issue as DetectedIssue & { id: string })
    : undefined;
}

/**
 * The plan an infusion naming none is tied to (planOfUnlinkedInfusion), from the patient's plans and the pump's records
 * around it; reads only. Also for one recorded in error before its follow-up linked it (InfusionsInError, clinic day
 * seed 2425): pass it as it was charted (completed).
 */
export async function planTiedToUnlinkedInfusion(
  fhir: FhirClient,
  protocols: ProtocolSource,
  procedure: Procedure,
): Promise<UnlinkedInfusionPlan> {
  const patient = procedure.subject.reference!;
  // The person's records (a merge may have left their plan under the record merged away: since session 48): one read.
  const records = (await personRecordsOf(fhir, patient)).join(',');
  const plans = await fhir.searchAll<CarePlan>('CarePlan', {
    subject: records,
    // Stopped and completed ones too: a session the pump gave under a plan stopped since is still the infusion's.
    status: 'active,draft,on-hold,revoked,completed',
    _count: 50,
  });
  const candidates: PlanCandidate[] = [];
  for (const carePlan of plans) {
    const resolved = await protocols.ofCarePlan(carePlan);
    const infusion = resolved && infusionDefinitionFor(resolved.plan, resolved.definitions);
    // Plans of the EHR's own protocols (a care pathway) follow up no infusion: named, the infusion still names none.
    if (infusion && followsUpInfusions(infusion)) candidates.push({ carePlan, infusion });
  }
  let administrations: MedicationAdministration[] = [];
  let planOfOrder = new Map<string, string>();
  let tasks: Task[] = [];
  const performed = performedOf(procedure);
  const params = performed && administrationsSearchParams(patient.split('/')[1], performed);
  if (candidates.length && !procedure.instantiatesCanonical?.length && params) {
    const [found, planTasks] = await Promise.all([
      fhir.search<MedicationAdministration | MedicationRequest>('MedicationAdministration', {
        ...params,
        patient: records,
        _count: 100,
      }),
      // A session the EHR closed naming this infusion in its output (R4 has no search on Task.output): the plans' Tasks.
      fhir.searchAll<Task>('Task', {
        'based-on': candidates.map(({ carePlan }) => `CarePlan/${carePlan.id}`).join(','),
        _count: 200,
      }),
    ]);
    tasks = planTasks;
    administrations = matchesOf<MedicationAdministration>(found);
    const orders = includedOf<MedicationRequest>(found, 'MedicationRequest');
    orders.push(...(await ordersDeletedSince(fhir, administrations, orders)));
    // The EHR's own orders name no plan: the Tasks approved on them, or on the orders they replace at any depth (the
    // patient's orders, read only then), do.
    const patientOrders = orders.some((o) => !carePlanReferenceOf(o))
      ? await fhir.searchAll<MedicationRequest>('MedicationRequest', { subject: records, intent: 'order', _count: 200 })
      : [];
    const unplanned = ordersNamingNoPlan(orders, patientOrders);
    const approvedOn = unplanned.length
      ? await fhir.searchAll<Task>('Task', { 'based-on': unplanned.join(','), _count: 100 })
      : [];
    planOfOrder = ordersPlans(orders, approvedOn, patientOrders);
  }
  return planOfUnlinkedInfusion({ procedure, candidates, administrations, planOfOrder, tasks });
}

/**
 * The orders the pump's records name that the search did not include: deleted in the EHR after the pump gave them
 * (clinic day seed 2428, an EHR's order a session was approved on), read as they last were. Their plan, or the Task
 * approved on them, still ties the infusion to its plan. One read of each one's history, only then (rare).
 */
async function ordersDeletedSince(
  fhir: FhirClient,
  administrations: MedicationAdministration[],
  included: MedicationRequest[],
): Promise<MedicationRequest[]> {
  const found = new Set(included.map((o) => o.id));
  const missing = [
    ...new Set(
      administrations
        .map((a) => /^MedicationRequest\/([^/]+)$/.exec(a.request?.reference ?? '')?.[1])
        .filter((id): id is string => Boolean(id) && !found.has(id)),
    ),
  ];
  const read = await Promise.all(
    missing.map((id) => fhir.readEvenIfDeleted<MedicationRequest>('MedicationRequest', id)),
  );
  return read.flatMap((r, i) => (r?.deleted ? [{ ...r.resource, id: missing[i] }] : []));
}
