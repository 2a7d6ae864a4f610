import { Injectable } from '@nestjs/common';
import type {
  Bundle,
  CarePlan,
  CommunicationRequest,
  DetectedIssue,
  Practitioner,
  Procedure,
  Provenance,
  Task,
} from '@medplum/fhirtypes';
import { FhirClient } from '@kc/fhir';
import { DECISION_KEY_SYSTEM, ProtocolCatalog } from '@kc/protocols';
import { displayName, issueView, WorklistEnricher, type PatientSummary, type ScoreView } from './worklist-enricher';

export interface TimelineEvent {
  date?: string;
  type: 'infusion' | 'follow-up' | 'decision' | 'contraindication' | 'reminder';
  text: string;
  status?: string;
  /** who decided (Provenance agent), by name when the Practitioner has one */
  who?: string;
  reason?: string;
  reference: string;
}

export interface PatientTimeline {
  patient: PatientSummary;
  carePlans: { id: string; status: string; title?: string; created?: string }[];
  scores: ScoreView[];
  events: TimelineEvent[];
}

/** A patient's CarePlan history: infusions done, follow-ups, contraindications and who decided what (Provenance). */
@Injectable()
export class PatientTimelineService {
  constructor(
    private readonly fhir: FhirClient,
    private readonly catalog: ProtocolCatalog,
    private readonly enricher: WorklistEnricher,
  ) {}

  async timeline(patientId: string, now = new Date()): Promise<PatientTimeline> {
    const patient = `Patient/${patientId}`;
    const [records, plans, procedures, tasks, reminders] = await Promise.all([
      this.enricher.records([patient], [], now),
      this.fhir.searchAll<CarePlan>('CarePlan', { subject: patient, _count: 100 }),
      this.fhir.searchAll<Procedure>('Procedure', { subject: patient, _count: 200 }),
      this.fhir.searchAll<Task>('Task', { patient, _count: 200 }),
      this.fhir.searchAll<CommunicationRequest>('CommunicationRequest', { subject: patient, _count: 200 }),
    ]);
    const issues = (
      await Promise.all(
        plans.map((p) => this.fhir.searchAll<DetectedIssue>('DetectedIssue', { implicated: `CarePlan/${p.id}` })),
      )
    ).flat();
    const decisions = await this.decisions(tasks);
    const names = await this.practitionerNames(decisions);
    const events: TimelineEvent[] = [
      ...procedures
        .filter((p) => p.status === 'completed')
        .map((p) => ({
          date: p.performedPeriod?.end ?? p.performedDateTime,
          type: 'infusion' as const,
          text: `Infusion done: ${p.code?.coding?.[0]?.display ?? p.code?.text ?? 'procedure'}`,
          status: p.status,
          reference: `Procedure/${p.id}`,
        })),
      ...tasks.map((t) => ({
        date: t.restriction?.period?.start ?? t.authoredOn,
        type: 'follow-up' as const,
        text: t.description ?? t.code?.coding?.[0]?.code ?? 'Task',
        status: t.businessStatus?.coding?.[0]?.code ?? t.status,
        reason: t.reasonCode?.text,
        reference: `Task/${t.id}`,
      })),
      // Proposals (draft) are not messages yet: only what is scheduled, sent or cancelled.
      ...reminders
        .filter((r) => r.status !== 'draft')
        .map((r) => ({
          date: r.occurrenceDateTime ?? r.occurrencePeriod?.start,
          type: 'reminder' as const,
          text: r.category?.[0]?.coding?.[0]?.display ?? r.category?.[0]?.text ?? 'Message to the patient',
          status: REMINDER_STATUS[r.status] ?? r.status,
          reason: r.statusReason?.text,
          reference: `CommunicationRequest/${r.id}`,
        })),
      ...issues.map((i) => {
        const view = issueView(i);
        return {
          date: i.identifiedDateTime ?? i.meta?.lastUpdated,
          type: 'contraindication' as const,
          text: `Contraindication: ${view.text}`,
          status: view.state,
          reference: `DetectedIssue/${i.id}`,
        };
      }),
      ...decisions.map((p) => {
        const who = p.agent?.[0]?.who;
        return {
          date: p.recorded,
          type: 'decision' as const,
          text: decisionText(p, tasks),
          who: (who?.reference && names.get(who.reference)) ?? who?.display ?? who?.reference ?? who?.identifier?.value,
          reason: p.reason?.[0]?.text,
          reference: `Provenance/${p.id}`,
        };
      }),
    ].sort((a, b) => Date.parse(a.date ?? '9999') - Date.parse(b.date ?? '9999'));
    return {
      patient: records.summaries.get(patient)!,
      carePlans: plans.map((p) => ({
        id: p.id!,
        status: p.status,
        title: this.catalog.findPlanDefinition(p.instantiatesCanonical?.[0]?.split('|')[0] ?? '')?.title ?? p.title,
        created: p.created,
      })),
      scores: records.scores.get(patient) ?? [],
      events,
    };
  }

  /**
   * Decision Provenances, found by the key each carries: the Task version a clinician decided on (version ids are
   * opaque, so each Task's history says which versions exist; a Task still awaiting approval has no decision).
   */
  private async decisions(tasks: Task[]): Promise<Provenance[]> {
    const changed = tasks.filter((t) => t.id && t.status !== 'draft');
    const histories = await Promise.all(
      changed.map((t) => this.fhir.operation<Bundle<Task>>(`Task/${t.id}/_history?_count=100`)),
    );
    const keys = histories.flatMap((h) =>
      (h.entry ?? [])
        .map((e) => e.resource)
        .filter((r): r is Task => Boolean(r?.id && r.meta?.versionId))
        .map((r) => `Task/${r.id}/_history/${r.meta!.versionId}`),
    );
    const found: Provenance[] = [];
    for (let i = 0; i < keys.length; i += 50) {
      const tag = keys
        .slice(i, i + 50)
        .map((k) => `${DECISION_KEY_SYSTEM}|${k}`)
        .join(',');
      found.push(...(await this.fhir.searchAll<Provenance>('Provenance', { _tag: tag, _count: 100 })));
    }
    return found;
  }

  private async practitionerNames(decisions: Provenance[]): Promise<Map<string, string>> {
    const refs = [
      ...new Set(
        decisions
          .map((p) => p.agent?.[0]?.who?.reference)
          .filter((r): r is string => /^Practitioner\/[^/]+$/.test(r ?? '')),
      ),
    ];
    const names = new Map<string, string>();
    await Promise.all(
      refs.map(async (ref) => {
        const practitioner = await this.fhir.readIfExists<Practitioner>('Practitioner', ref.split('/')[1]);
        const name = displayName(practitioner?.name);
        if (name) names.set(ref, name);
      }),
    );
    return names;
  }
}

/** What a clinician reads of a reminder's R4 status. */
const REMINDER_STATUS: Partial<Record<CommunicationRequest['status'], string>> = {
  active: 'scheduled',
  completed: 'sent',
  revoked: 'cancelled',
};

/** e.g. "Decision: approve Next induction session (Task/123)". */
function decisionText(provenance: Provenance, tasks: Task[]): string {
  const target = provenance.target?.[0]?.reference?.replace(/\/_history\/.*$/, '');
  const task = tasks.find((t) => `Task/${t.id}` === target);
  const what = task?.description ? `${task.description} (${target})` : (target ?? '');
  return `Decision: ${provenance.activity?.text ?? 'update'} ${what}`.trim();
}
