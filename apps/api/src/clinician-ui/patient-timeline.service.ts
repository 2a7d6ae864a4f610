import { Inject, Injectable } from '@nestjs/common';
import type {
  Bundle,
  CarePlan,
  Communication,
  CommunicationRequest,
  DetectedIssue,
  Medication,
  MedicationAdministration,
  MedicationRequest,
  Practitioner,
  Procedure,
  Provenance,
  Questionnaire,
  QuestionnaireItem,
  QuestionnaireResponse,
  QuestionnaireResponseItemAnswer,
  Task,
} from '@medplum/fhirtypes';
import { FhirClient, includedOf, matchesOf, readAndSearchEach, searchEach, type NamedSearch } from '@kc/fhir';
import { notFound } from '@kc/common';
import {
  carePlanReferenceOf,
  infusionDefinitionFor,
  isInfusion,
  performedOf,
  planEndNote,
  protocolPlanOf,
  sameTimeInfusions,
  standingRateNotice,
  toInfusionCompleted,
} from '@kc/followups';
import { APP_CONFIG, type AppConfig } from '@kc/config';
import {
  orderRateText,
  administeredRate,
  rateInWords,
  answersByLinkId,
  DECISION_KEY_SYSTEM,
  decisionKey,
  extractedQuestions,
  flattenItems,
  clinicPeriod,
  ProtocolCatalog,
  plansImplicatedBy,
  personRecords,
  alertsTold,
  SERVICE_CODE_SYSTEM,
} from '@kc/protocols';
import { PlanDefinitions, recordsLinkedFrom } from '@kc/nest-core';
import { isOpen, isOpenOrder } from '@kc/task-states';
import {
  displayName,
  issueView,
  type ContraindicationView,
  type EffectsView,
  type PatientSummary,
  type ScoreView,
} from './record-views';
import { WorklistEnricher } from './worklist-enricher';

export interface TimelineEvent {
  date?: string;
  type:
    | 'infusion'
    | 'follow-up'
    | 'decision'
    | 'contraindication'
    | 'reminder'
    | 'order'
    | 'administration'
    | 'clinic-alert';
  text: string;
  status?: string;
  /** who decided (Provenance agent), by name when the Practitioner has one */
  who?: string;
  reason?: string;
  /** Something the clinic must act on (a reminder sent with less notice than it needs). */
  attention?: boolean;
  reference: string;
  /** A contraindication's version, for the page's Override (If-Match). */
  versionId?: string;
  /** The orders an unresolved contraindication holds. */
  holds?: string[];
  /** A contraindication's kind: found in the patient's data, or an effect reported at a check (the page's words). */
  kind?: ContraindicationView['kind'];
  /** A follow-up done by answering a Questionnaire (the post-infusion check), still open: its title, to record it. */
  answers?: string;
  /** A contraindication's evidence, as the page names it (an infusion charted naming no plan: when it was). */
  evidence?: string[];
  /** An infusion charted naming no plan: the plans it may be a session of (`CarePlan/<id>`), to link it to. */
  plans?: string[];
}

export interface PatientTimeline {
  patient: PatientSummary;
  /**
   * `note`: an ended plan's last note, why it ended (a death recorded in the EHR, and since taken back); `subject`:
   * the record it is under, when another of the person's than the one asked for (a merge).
   */
  carePlans: { id: string; status: string; title?: string; created?: string; note?: string; subject?: string }[];
  scores: ScoreView[];
  /** What the patient reported at their latest recorded check. */
  effects?: EffectsView;
  events: TimelineEvent[];
}

/** How the patient view names each kind of issue on the plan. */
const ISSUE_KIND_WORDS: Record<ContraindicationView['kind'], string> = {
  contraindication: 'Contraindication',
  'reported-effect': 'Effect to review',
  'unread-answers': 'Answers to review',
  'infusion-in-error': 'Infusion recorded in error',
  'infusion-not-linked': 'Infusion charted without its plan',
};
/**
 * A patient's CarePlan history: infusions done, follow-ups, the medication orders (held or not), contraindications
 * and who decided what (Provenance).
 */
@Injectable()
export class PatientTimelineService {
  constructor(
    private readonly fhir: FhirClient,
    private readonly catalog: ProtocolCatalog,
    private readonly protocols: PlanDefinitions,
    private readonly enricher: WorklistEnricher,
    @Inject(APP_CONFIG) private readonly config: Pick<AppConfig, 'clinicTimeZone'>,
  ) {}

  /**
   * Four rounds of FHIR requests whatever the patient's history holds (it was one request per CarePlan, per decided
   * Task and per decider besides the searches): the patient's records, then the plans' contraindications with the
   * decided Tasks' histories, then the decisions' Provenances, then who decided.
   */
  async timeline(patientId: string, now = new Date()): Promise<PatientTimeline> {
    const patient = `Patient/${patientId}`;
    const [records, ofRecord] = await Promise.all([
      this.enricher.records([patient], [], now),
      searchEach(this.fhir, recordSearches(patient)),
    ]);
    if (records.missing.has(patient)) throw notFound(`${patient} not found`);
    // The person's other records (a merge): what is under them too, one round more, only for such a patient (since
    // session 49; before, the plan left under the record merged away was not on the kept record's view); those they
    // link in turn (a record merged twice), one search a step before it (since session 50).
    const ownLinks = records.summaries.get(patient)?.linkedRecords ?? [];
    const linked = ownLinks.length ? (await recordsLinkedFrom(this.fhir, [patient], ownLinks)).linked : [];
    const [others, found] = linked.length
      ? await Promise.all([
          this.enricher.records(linked, [], now),
          searchEach(this.fhir, recordSearches(personRecords(patientId, linked).join(','))),
        ])
      : [undefined, ofRecord];
    const plans = matchesOf<CarePlan>(found.plans);
    const procedures = matchesOf<Procedure>(found.procedures);
    const tasks = matchesOf<Task>(found.tasks);
    const reminders = matchesOf<CommunicationRequest>(found.reminders);
    const alerts = alertsTold(matchesOf<Communication>(found.alerts));
    const orders = matchesOf<MedicationRequest>(found.orders);
    const administrations = matchesOf<MedicationAdministration>(found.administrations);
    const givenUnder = includedOf<MedicationRequest>(found.administrations, 'MedicationRequest');
    const medications = includedOf<Medication>(found.administrations, 'Medication');
    const responses = new Map(
      matchesOf<QuestionnaireResponse>(found.responses).map((r) => [`QuestionnaireResponse/${r.id}`, r]),
    );
    const planById = new Map(plans.map((p) => [`CarePlan/${p.id}`, p]));
    const toRecord = await this.checksToRecord(tasks, planById);
    const chartedTwice = await this.infusionsChartedTwice(procedures, plans, tasks);
    const { issues, decisionKeys } = await this.issuesAndDecidedVersions(plans, tasks);
    const decisions = await this.decisions(decisionKeys);
    // Who decided: the decisions' authors and the clinicians who overrode a contraindication (its mitigation).
    const names = await this.practitionerNames([
      ...decisions.map((p) => p.agent?.[0]?.who?.reference),
      ...issues.flatMap((i) => (i.mitigation ?? []).map((m) => m.author?.reference)),
    ]);
    const events: TimelineEvent[] = [
      ...procedures
        .filter((p) => p.status === 'completed')
        .map((p) => ({
          date: p.performedPeriod?.end ?? p.performedDateTime,
          type: 'infusion' as const,
          text: `Infusion done: ${p.code?.coding?.[0]?.display ?? p.code?.text ?? 'procedure'}`,
          status: p.status,
          ...(chartedTwice.has(`Procedure/${p.id}`) ? { reason: chartedTwice.get(`Procedure/${p.id}`) } : {}),
          reference: `Procedure/${p.id}`,
        })),
      ...tasks.map((t) => ({
        date: t.restriction?.period?.start ?? t.authoredOn,
        type: 'follow-up' as const,
        text: t.description ?? t.code?.coding?.[0]?.code ?? 'Task',
        // An approved Task held with its order (a contraindication found since) says so.
        // Whose it is, by name only (a bare reference is an id, not words for a clinician).
        status:
          taskStatusInWords(t) +
          (t.status === 'on-hold' ? ', on hold' : '') +
          (t.owner?.display ? `, taken by ${t.owner.display}` : ''),
        // A check recorded says what the patient answered.
        reason: this.answered(t, responses) ?? t.reasonCode?.text,
        reference: `Task/${t.id}`,
        ...recordWith(t, toRecord),
      })),
      // Proposals (draft) are not messages yet: only what is scheduled, sent or cancelled.
      ...reminders
        .filter((r) => r.status !== 'draft')
        .map((r) => ({
          date: r.occurrenceDateTime ?? r.occurrencePeriod?.start,
          type: 'reminder' as const,
          text: r.category?.[0]?.coding?.[0]?.display ?? r.category?.[0]?.text ?? 'Message to the patient',
          status: REMINDER_STATUS[r.status] ?? r.status,
          // A reminder sent with less notice than it needs carries a note for the clinic (shortNotice).
          reason: r.statusReason?.text ?? r.note?.at(-1)?.text,
          attention: r.status === 'completed' && Boolean(r.note?.length),
          reference: `CommunicationRequest/${r.id}`,
        })),
      ...issues.map((i) => {
        const view = issueView(i);
        // An override says who took it and why (the mitigation a clinician's $override wrote).
        const override = i.mitigation?.at(-1);
        const by = override?.author?.reference;
        return {
          date: i.identifiedDateTime ?? i.meta?.lastUpdated,
          type: 'contraindication' as const,
          text: `${ISSUE_KIND_WORDS[view.kind]}: ${view.text}`,
          status: view.state,
          who: by ? (names.get(by) ?? override?.author?.display ?? by) : undefined,
          reason: override?.action?.text,
          reference: `DetectedIssue/${i.id}`,
          versionId: view.versionId,
          holds: view.holds,
          kind: view.kind,
          // What the page shows it by, and (an infusion charted naming no plan) the plans it may be linked to.
          evidence: view.evidence,
          ...(view.kind === 'infusion-not-linked' ? { plans: plansImplicatedBy(i) } : {}),
        };
      }),
      // What an EHR or a pharmacy would give, and whether a contraindication holds it.
      ...orders.map((o) => ({
        date: o.authoredOn ?? o.meta?.lastUpdated,
        type: 'order' as const,
        text: `Order: ${o.medicationCodeableConcept?.text ?? o.medicationCodeableConcept?.coding?.[0]?.display ?? 'medication'}${orderRateText(o) ? ` at ${orderRateText(o)}` : ''}`,
        status: o.status,
        // Closed: why. Open: what the pump recorded of the last session since its approval, while it applies.
        reason: o.statusReason?.text ?? (isOpenOrder(o) ? standingRateNotice(o) : undefined),
        reference: `MedicationRequest/${o.id}`,
      })),
      // What was given, as recorded at the pump: a rate changed during a session shows here (and starts the next).
      ...administrations.map((a) => ({
        date: a.effectivePeriod?.start ?? a.effectiveDateTime,
        type: 'administration' as const,
        text: administrationText(a, givenUnder, medications),
        status: a.status,
        reference: `MedicationAdministration/${a.id}`,
      })),
      // What the clinic was told about the patient (by email, in the EHR's inbox), and whether it is dealt with since:
      // an unplanned check or unrecorded answers show nowhere else on the page (since session 61).
      ...alerts.map((a) => ({
        date: a.sent,
        type: 'clinic-alert' as const,
        text: `Clinic told (${a.channels.map((c) => (c === 'inbox' ? "EHR's inbox" : 'email')).join(', ')}): ${a.subject}`,
        status: a.dealtWith ? 'dealt with' : a.noticed ? 'open' : 'sent',
        attention: a.noticed && !a.dealtWith,
        reference: a.reference,
      })),
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
      // Every record of the person it shows (the access audit names each).
      patient: { ...records.summaries.get(patient)!, ...(linked.length ? { linkedRecords: linked } : {}) },
      carePlans: plans.map((p) => ({
        id: p.id!,
        status: p.status,
        title: this.catalog.findPlanDefinition(p.instantiatesCanonical?.[0]?.split('|')[0] ?? '')?.title ?? p.title,
        created: p.created,
        // An ended plan says why (its last note); one holding care with an end, when (and why it is not over yet).
        ...(p.status === 'revoked' || p.status === 'completed'
          ? { note: p.note?.at(-1)?.text }
          : { note: planEndNote(p, now, this.config.clinicTimeZone) }),
        ...(p.subject?.reference !== patient ? { subject: p.subject?.reference } : {}),
      })),
      // The latest of each score, and the latest effects reported, under any of the person's records.
      scores: latestOfEachScore([records, ...(others ? [others] : [])].flatMap((r) => [...r.scores.values()])),
      effects: latestEffects([records, ...(others ? [others] : [])].flatMap((r) => [...r.effects.values()])),
      events,
    };
  }

  /**
   * The infusions charted twice that were not followed up, the other record of the same infusion being
   * (sameTimeInfusions, as the follow-up judged them: overlapping it, or closer to it than one infusion lasts), with why
   * in words: a clinician reading two infusions minutes apart and one check sees they are one. A protocol read (cached)
   * per completed procedure of a plan not followed up, which is rare. Since session 53.
   */
  private async infusionsChartedTwice(
    procedures: Procedure[],
    plans: CarePlan[],
    tasks: Task[],
  ): Promise<Map<string, string>> {
    const followedUp = new Set(tasks.map((t) => t.reasonReference?.reference));
    const isFollowedUp = (p: Procedure) => followedUp.has(`Procedure/${p.id}`);
    const copies = new Map<string, string>();
    for (const copy of procedures.filter((p) => !isFollowedUp(p))) {
      const plan = protocolPlanOf(copy, plans);
      const charted = toInfusionCompleted(copy);
      const protocol = plan && charted.ok ? await this.protocols.ofCarePlan(plan) : undefined;
      if (!plan || !charted.ok || !protocol) continue;
      const infusion = infusionDefinitionFor(protocol.plan, protocol.definitions);
      if (!isInfusion(copy, infusion)) continue;
      const original = sameTimeInfusions({ ...charted.event, carePlanId: plan.id! }, procedures, infusion).find(
        isFollowedUp,
      );
      const when = original && performedOf(original);
      if (when)
        copies.set(
          `Procedure/${copy.id}`,
          `charted twice: the same infusion as the one charted ${clinicPeriod(when, this.config.clinicTimeZone)}, followed up once`,
        );
    }
    return copies;
  }

  /** The open follow-ups done by answering a Questionnaire (of the catalog's protocols or an EHR's), by Task id. */
  private async checksToRecord(tasks: Task[], plans: Map<string, CarePlan>): Promise<Map<string, Questionnaire>> {
    const found = await Promise.all(
      tasks
        .filter(isOpen)
        .map(
          async (t) =>
            [t.id!, await this.protocols.questionnaireOfTask(t, plans.get(carePlanReferenceOf(t) ?? ''))] as const,
        ),
    );
    return new Map(found.flatMap(([id, q]) => (q ? [[id, q] as const] : [])));
  }

  /** A recorded check's answers in a line: those the Questionnaire extracts (scores, effects), then any note. */
  private answered(task: Task, responses: Map<string, QuestionnaireResponse>): string | undefined {
    const response = task.output
      ?.map((o) => responses.get(o.valueReference?.reference ?? ''))
      .find((r): r is QuestionnaireResponse => Boolean(r));
    const questionnaire = response?.questionnaire
      ? this.catalog.resolve<Questionnaire>(response.questionnaire, 'Questionnaire')
      : undefined;
    if (!response || !questionnaire) return undefined;
    const answers = answersByLinkId(response.item ?? []);
    const extracted = extractedQuestions(questionnaire).flatMap((q) => {
      const values = (answers.get(q.linkId) ?? []).map((a) => answerInWords(a, q));
      return values.length ? [`${shortLabel(q.text ?? q.linkId)}: ${values.join(', ')}`] : [];
    });
    const notes = flattenItems(questionnaire.item ?? [])
      .filter((q) => q.type === 'text')
      .flatMap((q) => (answers.get(q.linkId) ?? []).map((a) => `${shortLabel(q.text ?? 'Note')}: ${a.valueString}`));
    return [...extracted, ...notes].join('; ') || undefined;
  }

  /**
   * One batch: each plan's contraindications (every page) and each decided Task's history, whose versions are the
   * keys its decisions' Provenances carry (version ids are opaque; a Task still awaiting approval has no decision).
   */
  private async issuesAndDecidedVersions(
    plans: CarePlan[],
    tasks: Task[],
  ): Promise<{ issues: DetectedIssue[]; decisionKeys: string[] }> {
    const searches: NamedSearch[] = plans.map((p) => ({
      name: `issues ${p.id}`,
      resourceType: 'DetectedIssue',
      params: { implicated: `CarePlan/${p.id}` },
      everyMatch: true,
    }));
    const decided = tasks.filter((t) => t.id && t.status !== 'draft');
    const { read, found } = await readAndSearchEach(
      this.fhir,
      decided.map((t) => `Task/${encodeURIComponent(t.id!)}/_history?_count=100`),
      searches,
    );
    const decisionKeys = read.flatMap((history) =>
      ((history as Bundle<Task> | undefined)?.entry ?? [])
        .map((e) => e.resource)
        .filter((r): r is Task => Boolean(r?.id && r.meta?.versionId))
        .map((r) => decisionKey(`Task/${r.id}`, r.meta!.versionId!)),
    );
    return { issues: searches.flatMap((q) => matchesOf<DetectedIssue>(found[q.name])), decisionKeys };
  }

  /** The decisions' Provenances, by the key each carries (DECISION_KEY_SYSTEM): one batch of tag searches. */
  private async decisions(keys: string[]): Promise<Provenance[]> {
    const searches: NamedSearch[] = [];
    for (let i = 0; i < keys.length; i += 50)
      searches.push({
        name: `decisions ${i}`,
        resourceType: 'Provenance',
        params: {
          _tag: keys
            .slice(i, i + 50)
            .map((k) => `${DECISION_KEY_SYSTEM}|${k}`)
            .join(','),
          _count: 100,
        },
        everyMatch: true,
      });
    const found = await searchEach(this.fhir, searches);
    return searches.flatMap((q) => matchesOf<Provenance>(found[q.name]));
  }

  /** Who decided, by name: their Practitioners in one batch. */
  private async practitionerNames(references: (string | undefined)[]): Promise<Map<string, string>> {
    const refs = [...new Set(references.filter((r): r is string => /^Practitioner\/[^/]+$/.test(r ?? '')))];
    const names = new Map<string, string>();
    const { read } = await readAndSearchEach(
      this.fhir,
      refs.map((ref) => `Practitioner/${encodeURIComponent(ref.split('/')[1])}`),
      [],
    );
    refs.forEach((ref, i) => {
      const name = displayName((read[i] as Practitioner | undefined)?.name);
      if (name) names.set(ref, name);
    });
    return names;
  }
}

/** e.g. "awaiting clinician approval": the business status's display, else its code, else the Task's status. */
function taskStatusInWords(task: Task): string {
  const words = task.businessStatus?.text ?? task.businessStatus?.coding?.[0]?.display;
  return words ? words[0].toLowerCase() + words.slice(1) : (task.businessStatus?.coding?.[0]?.code ?? task.status);
}

/** What a clinician reads of a reminder's R4 status. */
const REMINDER_STATUS: Partial<Record<CommunicationRequest['status'], string>> = {
  active: 'scheduled',
  completed: 'sent',
  revoked: 'cancelled',
};

/**
 * e.g. "Decision: approve Next induction session", "Recorded: Post-infusion check within one week" (the Task's reference
 * only when it has no description).
 */
function decisionText(provenance: Provenance, tasks: Task[]): string {
  const target = provenance.target?.[0]?.reference?.replace(/\/_history\/.*$/, '');
  const task = tasks.find((t) => `Task/${t.id}` === target);
  const what = task?.description ?? target ?? '';
  // "change-dose" -> "change dose": the decision as words.
  const activity = (provenance.activity?.text ?? 'update').replace(/-/g, ' ');
  return (activity === 'complete' ? `Recorded: ${what}` : `Decision: ${activity} ${what}`).trim();
}

/** "Pain now (0 no pain .. 10 worst imaginable)" -> "Pain now": the question as a label. */
function shortLabel(text: string): string {
  return text.replace(/\s*\(.*\)\s*$/, '');
}

/**
 * An answer as a clinician reads it; a choice by its option's name in the Questionnaire when the answer names none
 * (an EHR's form filler may send the code alone).
 */
function answerInWords(answer: QuestionnaireResponseItemAnswer, question: QuestionnaireItem): string {
  const coding = answer.valueCoding;
  const option = coding
    ? question.answerOption?.find((o) => o.valueCoding?.code === coding.code)?.valueCoding?.display
    : undefined;
  return String(
    coding?.display ??
      option ??
      coding?.code ??
      answer.valueInteger ??
      answer.valueDecimal ??
      answer.valueString ??
      answer.valueBoolean ??
      '',
  );
}

/**
 * "Given: Ketamine at 60 mg/h (0.75 mg/kg/h)", "Given: Ketamine at 30 mL/h of 2 mg/mL (0.75 mg/kg/h)": the rate
 * recorded, and per kg for the weight its order was computed for (a rate in mL/h through the bag's concentration).
 */
function administrationText(
  administration: MedicationAdministration,
  orders: MedicationRequest[],
  medications: Medication[],
): string {
  const order = orders.find((o) => `MedicationRequest/${o.id}` === administration.request?.reference);
  const medication =
    administration.medicationCodeableConcept?.text ??
    administration.medicationCodeableConcept?.coding?.[0]?.display ??
    order?.medicationCodeableConcept?.text ??
    'medication';
  // The order's rate per kg unit (its `ordered` rate, e.g. mg/kg/h).
  const perKgUnit = order?.dosageInstruction?.[0]?.doseAndRate
    ?.map((d) => d.rateQuantity?.code)
    .find((c) => c?.includes('/kg'));
  const given =
    order && perKgUnit
      ? administeredRate({ order, administrations: [administration], medications }, perKgUnit)
      : undefined;
  if (given && perKgUnit) return `Given: ${medication} at ${rateInWords(given, perKgUnit)}`;
  const rate = administration.dosage?.rateQuantity;
  const recorded = rate?.value !== undefined ? ` at ${rate.value} ${rate.unit ?? rate.code ?? ''}`.trimEnd() : '';
  return `Given: ${medication}${recorded}`;
}

/** An open follow-up done by answering a Questionnaire: what the page needs to record it (title, version seen). */
function recordWith(task: Task, toRecord: Map<string, Questionnaire>): Pick<TimelineEvent, 'answers' | 'versionId'> {
  const questionnaire = toRecord.get(task.id ?? '');
  return questionnaire ? { answers: questionnaire.title ?? 'Questionnaire', versionId: task.meta?.versionId } : {};
}

/** What the timeline reads of a patient (`patient`: their record, or the person's records comma-joined). */
function recordSearches(patient: string): NamedSearch[] {
  return [
    { name: 'plans', resourceType: 'CarePlan', params: { subject: patient, _count: 100 } },
    { name: 'procedures', resourceType: 'Procedure', params: { subject: patient, _count: 200 } },
    { name: 'tasks', resourceType: 'Task', params: { patient, _count: 200 } },
    { name: 'reminders', resourceType: 'CommunicationRequest', params: { subject: patient, _count: 200 } },
    { name: 'orders', resourceType: 'MedicationRequest', params: { subject: patient, intent: 'order', _count: 200 } },
    {
      // What was given, as the EHR recorded it: under an order here, the EHR's own, or none. With the orders and the
      // bags they name (a pump's mL/h is read through the bag's concentration).
      name: 'administrations',
      resourceType: 'MedicationAdministration',
      params: {
        patient,
        _count: 200,
        _include: ['MedicationAdministration:request', 'MedicationAdministration:medication'],
      },
    },
    { name: 'responses', resourceType: 'QuestionnaireResponse', params: { subject: patient, _count: 200 } },
    {
      name: 'alerts',
      resourceType: 'Communication',
      params: { subject: patient, category: `${SERVICE_CODE_SYSTEM}|clinic-alert`, _count: 200 },
    },
  ].map((q) => ({ ...q, everyMatch: true }));
}

/** Of several records' latest scores, the latest of each (the first record's order of scores, then any new). */
function latestOfEachScore(lists: ScoreView[][]): ScoreView[] {
  const latest = new Map<string, ScoreView>();
  for (const score of lists.flat()) {
    const seen = latest.get(score.code);
    if (!seen || (score.date ?? '') > (seen.date ?? '')) latest.set(score.code, score);
  }
  return [...latest.values()];
}

/** Of several records' latest effects reported, the latest. */
function latestEffects(views: (EffectsView | undefined)[]): EffectsView | undefined {
  return views
    .filter((v): v is EffectsView => v !== undefined)
    .reduce<EffectsView | undefined>((a, b) => (!a || (b.date ?? '') > (a.date ?? '') ? b : a), undefined);
}
