import { isOpen } from '@kc/task-states';
import type {
  CodeSystemConcept,
  DetectedIssue,
  MedicationRequest,
  Observation,
  ObservationComponent,
  Resource,
  Task,
} from '@medplum/fhirtypes';
import {
  clinicDay,
  clinicDays,
  contraindicationState,
  isInfusionNotLinked,
  isReportedEffect,
  isUnreadAnswers,
  SERVICE_CODE_SYSTEM,
  uuidFromKey,
} from '@kc/protocols';
import type { Card, CardLink, Indicator } from './cds-types';
import type { EligibilityVerdict, UncheckedCondition } from './eligibility';

/**
 * Pure card building for the CDS Hooks services: FHIR resources and verdicts in, CDS Hooks cards out.
 * No Nest, no HTTP, no clock (now is passed in), no logging.
 */

export interface CardOptions {
  /** source.label of every card. */
  sourceLabel: string;
  /** A page where a clinician acts on the cards (the worklist), as each card's link. */
  worklistUrl?: string;
  /** Code -> display of the service CodeSystem (task kinds, contraindications). */
  displays?: Record<string, string>;
  /** The clinic's time zone: the days cards name are its own (CLINIC_TIME_ZONE). UTC unless given. */
  zone?: string;
}

export const MAX_SUMMARY = 139;
const DAY_MS = 86_400_000;
const INDICATOR_ORDER: Record<Indicator, number> = { critical: 0, warning: 1, info: 2 };

/** CDS Hooks wants summaries under 140 characters. */
export function summary(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length <= MAX_SUMMARY ? flat : `${flat.slice(0, MAX_SUMMARY - 1).trimEnd()}…`;
}

/** Code -> display of the service's CodeSystem(s) among the catalog resources. */
export function codeDisplays(resources: Resource[]): Record<string, string> {
  const displays: Record<string, string> = {};
  const walk = (concepts: CodeSystemConcept[] = []) => {
    for (const c of concepts) {
      if (c.display) displays[c.code] = c.display;
      walk(c.concept);
    }
  };
  for (const r of resources) if (r.resourceType === 'CodeSystem' && r.url === SERVICE_CODE_SYSTEM) walk(r.concept);
  return displays;
}

/** Cards most urgent first (stable within an indicator). */
export function sortCards(cards: Card[]): Card[] {
  return [...cards].sort((a, b) => INDICATOR_ORDER[a.indicator] - INDICATOR_ORDER[b.indicator]);
}

/** A day as the clinic reads it. */
const date = (instant: string | undefined, zone?: string) => clinicDay(instant, zone) ?? 'unknown date';
const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

export function links(options: CardOptions, label: string): CardLink[] | undefined {
  return options.worklistUrl ? [{ label, url: options.worklistUrl, type: 'absolute' }] : undefined;
}

// ---------------------------------------------------------------- follow-up Tasks (patient-view)

export type DueState = 'overdue' | 'due';

/**
 * Open follow-up (libs/task-states: awaiting approval, approved, rescheduled or overdue) whose window has closed
 * (overdue) or is open now (due).
 * Tasks without a window, not yet due, or closed (completed, rejected, cancelled...) give undefined.
 */
export function taskDueState(task: Task, now: Date): DueState | undefined {
  if (!isOpen(task)) return undefined;
  const period = task.restriction?.period;
  if (!period?.start && !period?.end) return undefined;
  const t = now.getTime();
  if (period.end && Date.parse(period.end) < t) return 'overdue';
  if (!period.start || Date.parse(period.start) <= t) return 'due';
  return undefined;
}

export function taskName(task: Task, displays: Record<string, string> = {}): string {
  const coding = task.code?.coding?.find((c) => c.system === SERVICE_CODE_SYSTEM) ?? task.code?.coding?.[0];
  return (
    task.code?.text ??
    coding?.display ??
    (coding?.code && displays[coding.code]) ??
    task.description ??
    coding?.code ??
    'Follow-up task'
  );
}

/** What the clinician reads in a card: the business status's text or display, else the Task's status code. */
function statusInWords(task: Task): string {
  return task.businessStatus?.text ?? task.businessStatus?.coding?.[0]?.display ?? task.status;
}

/** One card per due or overdue follow-up: overdue first (longest overdue first), then due (closing soonest first). */
export function followUpTaskCards(tasks: Task[], now: Date, options: CardOptions): Card[] {
  const open = tasks
    .map((task) => ({ task, state: taskDueState(task, now) }))
    .filter((t): t is { task: Task; state: DueState } => t.state !== undefined);
  const end = (t: Task) => Date.parse(t.restriction?.period?.end ?? '9999-12-31');
  open.sort((a, b) => (a.state === b.state ? end(a.task) - end(b.task) : a.state === 'overdue' ? -1 : 1));
  return open.map(({ task, state }) => {
    const name = taskName(task, options.displays);
    const period = task.restriction!.period!;
    const window = period.end ? clinicDays(period, options.zone) : `${date(period.start, options.zone)} to open-ended`;
    const daysOver = period.end ? Math.floor((now.getTime() - Date.parse(period.end)) / DAY_MS) : 0;
    const closed = daysOver < 1 ? 'today' : `${plural(daysOver, 'day')} ago`;
    const lines = [
      state === 'overdue'
        ? `**${name}** was due ${window}: the window closed ${closed}.`
        : `**${name}** is due now: window ${window}.`,
      ...(task.description && task.description !== name ? [task.description] : []),
      `Status: ${statusInWords(task)}.`,
    ];
    return {
      uuid: uuidFromKey(`cds:task:${task.id}:${state}`),
      summary: summary(
        state === 'overdue'
          ? `Overdue: ${name} (window closed ${date(period.end, options.zone)})`
          : `Due now: ${name} (window ${window})`,
      ),
      detail: lines.join('\n\n'),
      indicator: state === 'overdue' ? 'warning' : 'info',
      source: { label: options.sourceLabel },
      links: links(options, 'Open the clinician worklist'),
    } satisfies Card;
  });
}

// ---------------------------------------------------------------- contraindications

/**
 * A DetectedIssue that still stands, by the same rule as the approval guard (libs/protocols contraindicationState):
 * no mitigation recorded and not cancelled or entered in error. A bare R5-style status `mitigated` with no mitigation
 * (who, why) does not resolve it: the card must not vanish while approval is still refused.
 */
export function isUnresolvedContraindication(issue: DetectedIssue): boolean {
  return contraindicationState(issue) === 'unresolved';
}

export function issueCode(issue: DetectedIssue): string {
  const coding = issue.code?.coding?.find((c) => c.system === SERVICE_CODE_SYSTEM) ?? issue.code?.coding?.[0];
  return coding?.code ?? 'contraindication';
}

function contraindicationName(code: string, options: CardOptions, fallback?: string): string {
  return options.displays?.[code] ?? fallback ?? code.replace(/-/g, ' ');
}

function severityIndicator(issue: DetectedIssue): Indicator {
  return issue.severity === 'low' ? 'info' : issue.severity === 'moderate' ? 'warning' : 'critical';
}

/**
 * A contraindication on record, in words: cards are read by a clinician inside the EHR, so no references (the
 * DetectedIssue itself holds them, in implicated and evidence).
 */
function issueEvidence(issue: DetectedIssue, zone?: string): string {
  const on = date(issue.identifiedDateTime, zone);
  const recorded = isUnreadAnswers(issue)
    ? `Recorded on ${on}, not reviewed yet`
    : isReportedEffect(issue)
      ? `Reported at a post-infusion check on ${on}, not reviewed yet`
      : isInfusionNotLinked(issue)
        ? `Found on ${on}, not resolved`
        : `Recorded as a contraindication on ${on}, not resolved`;
  return `${recorded}${issue.detail ? `: ${issue.detail}` : ''}`;
}

/** patient-view: one card per unresolved contraindication on record. */
export function contraindicationCards(issues: DetectedIssue[], options: CardOptions): Card[] {
  return issues.filter(isUnresolvedContraindication).map((issue) => {
    const code = issueCode(issue);
    const name = contraindicationName(code, options, issue.code?.coding?.[0]?.display);
    const effect = isReportedEffect(issue);
    const notLinked = isInfusionNotLinked(issue);
    return {
      uuid: uuidFromKey(`cds:detectedissue:${issue.id}`),
      summary: summary(
        isUnreadAnswers(issue)
          ? `Ketamine check not read, awaiting review: ${name}`
          : effect
            ? `Reported after ketamine, awaiting review: ${name}`
            : notLinked
              ? 'Infusion charted without its ketamine care plan, to link'
              : `Unresolved ketamine contraindication: ${name}`,
      ),
      detail: [
        issue.code?.text ? `**${issue.code.text}**` : `**${name}**`,
        issueEvidence(issue, options.zone) + '.',
        effect
          ? "The patient's ketamine care plan waits until a clinician reviews what was reported and records what was decided."
          : notLinked
            ? "If it was a session of the patient's ketamine care plan, link it to that plan (the Procedure's basedOn) or in the clinician worklist: its post-infusion check and next session are then planned. Until it is linked, or recorded as not a session, the plan's approved orders are held."
            : 'Ketamine care plans for this patient stay blocked until a clinician resolves the issue or overrides it with a reason.',
      ].join('\n\n'),
      indicator: severityIndicator(issue),
      source: { label: options.sourceLabel, topic: { system: SERVICE_CODE_SYSTEM, code } },
      links: links(options, 'Review in the clinician worklist'),
    } satisfies Card;
  });
}

// ---------------------------------------------------------------- evidence

function conceptText(concept?: { text?: string; coding?: { display?: string; code?: string }[] }): string {
  return concept?.text ?? concept?.coding?.[0]?.display ?? concept?.coding?.[0]?.code ?? 'unnamed';
}

function valueText(v: Observation | ObservationComponent): string | undefined {
  if (v.valueQuantity) return `${v.valueQuantity.value} ${v.valueQuantity.unit ?? v.valueQuantity.code ?? ''}`.trim();
  if (v.valueCodeableConcept) return conceptText(v.valueCodeableConcept);
  if (v.valueString !== undefined) return v.valueString;
  if (v.valueBoolean !== undefined) return String(v.valueBoolean);
  if (v.valueInteger !== undefined) return String(v.valueInteger);
  return undefined;
}

/** One line naming a record and what it says, e.g. "Blood pressure panel: Systolic 195 mmHg, ... (2026-11-10)". */
export function describeEvidence(resource: Resource, zone?: string): string {
  if (resource.resourceType === 'Observation') {
    const o = resource;
    const values = [
      valueText(o),
      ...(o.component ?? []).map((c) => {
        const v = valueText(c);
        return v === undefined ? undefined : `${conceptText(c.code)} ${v}`;
      }),
    ].filter(Boolean);
    const when = o.effectiveDateTime ?? o.effectivePeriod?.start ?? o.effectiveInstant ?? o.issued;
    return `${conceptText(o.code)}: ${values.join(', ') || 'no value'} (${date(when, zone)})`;
  }
  if (resource.resourceType === 'Condition') {
    const c = resource;
    const status = c.clinicalStatus?.coding?.[0]?.code;
    const when = c.onsetDateTime ?? c.recordedDate;
    return `Condition: ${conceptText(c.code)}${status ? `, ${status}` : ''}${when ? ` (since ${date(when, zone)})` : ''}`;
  }
  if (resource.resourceType === 'DetectedIssue') return issueEvidence(resource);
  return `A ${resource.resourceType} on record`;
}

// ---------------------------------------------------------------- order-sign

export interface Contraindication {
  code: string;
  description: string;
  /** An effect the patient reported at a check, waiting for a clinician's review, rather than a contraindication. */
  reportedEffect?: boolean;
  /** A check whose answers could not be read here, waiting for a clinician to read them (a reported effect too). */
  unreadAnswers?: boolean;
  /** One line per record (DetectedIssue, Observation, Condition) that shows it. */
  evidence: string[];
}

/** Unresolved DetectedIssues and failed eligibility conditions, merged by contraindication code. */
export function orderContraindications(
  issues: DetectedIssue[],
  verdict: EligibilityVerdict,
  zone?: string,
): Contraindication[] {
  const byCode = new Map<string, Contraindication>();
  const entry = (code: string, description: string) => {
    const found = byCode.get(code) ?? { code, description, evidence: [] };
    byCode.set(code, found);
    return found;
  };
  for (const failed of verdict.failed) {
    const c = entry(failed.code, failed.description);
    c.evidence.push(...failed.evidence.map((record) => describeEvidence(record, zone)));
    c.evidence.push(...failed.emptyVariables.map((name) => `No ${name} on record`));
  }
  for (const issue of issues.filter(isUnresolvedContraindication)) {
    const c = entry(issueCode(issue), issue.code?.text ?? issue.detail ?? issueCode(issue));
    if (isReportedEffect(issue)) c.reportedEffect = true;
    if (isUnreadAnswers(issue)) c.unreadAnswers = true;
    c.evidence.push(issueEvidence(issue, zone));
  }
  return [...byCode.values()];
}

export const orderRefs = (orders: MedicationRequest[]) =>
  orders.map((o) => (o.id ? `MedicationRequest/${o.id}` : 'the draft ketamine order'));

/** What order-sign found for one patient's draft ketamine orders. */
export interface OrderSignFindings {
  orders: MedicationRequest[];
  contraindications: Contraindication[];
  /** Eligibility conditions that could not be evaluated (data missing). */
  unchecked: UncheckedCondition[];
}

/**
 * order-sign: a critical card per contraindication of the patient the ketamine orders are for, naming it and its
 * evidence, with a suggestion to remove the orders; a warning when some conditions could not be checked.
 */
export function orderSignCards(findings: OrderSignFindings, options: CardOptions): Card[] {
  const { orders, contraindications, unchecked } = findings;
  if (!orders.length) return [];
  const orderKey = orderRefs(orders).join(',');
  const cards = contraindications.map((c) => contraindicatedOrderCard(c, orders, orderKey, options));
  const notCovered = unchecked.filter((u) => !contraindications.some((c) => c.code === u.code));
  if (notCovered.length) cards.push(uncheckedOrderCard(notCovered, orderKey, options));
  return sortCards(cards);
}

function contraindicatedOrderCard(
  c: Contraindication,
  orders: MedicationRequest[],
  orderKey: string,
  options: CardOptions,
): Card {
  const name = contraindicationName(c.code, options);
  const orderWords = orders.length > 1 ? `these ${orders.length} ketamine orders` : 'this ketamine order';
  return {
    uuid: uuidFromKey(`cds:order-sign:${orderKey}:${c.code}`),
    // An effect reported after an infusion is not a contraindication: it waits for a clinician's review.
    summary: summary(
      c.unreadAnswers
        ? `Ketamine order: ${c.description}, not reviewed yet`
        : c.reportedEffect
          ? `Ketamine order: ${name} reported, not reviewed yet`
          : `Ketamine contraindicated: ${name}`,
    ),
    detail: [
      `**${c.description}**`,
      `Evidence:\n${c.evidence.map((line) => `- ${line}`).join('\n')}`,
      c.unreadAnswers
        ? `Sign ${orderWords} only after a clinician has read the check's answers in the EHR and recorded what was decided.`
        : c.reportedEffect
          ? `Sign ${orderWords} only after a clinician has reviewed what the patient reported and recorded what was decided.`
          : `Sign ${orderWords} only with a documented clinical override.`,
    ].join('\n\n'),
    indicator: 'critical',
    source: { label: options.sourceLabel, topic: { system: SERVICE_CODE_SYSTEM, code: c.code } },
    ...removeOrdersSuggestion(orders, `cds:order-sign:${orderKey}:${c.code}`),
    links: links(options, 'Open the clinician worklist'),
  } satisfies Card;
}

/**
 * An order-sign card's suggestion to delete the draft orders (by id; none when none has an id), its uuid from
 * `cardKey`: recommended unless said otherwise.
 */
export function removeOrdersSuggestion(
  orders: MedicationRequest[],
  cardKey: string,
  isRecommended = true,
): Pick<Card, 'selectionBehavior' | 'suggestions'> {
  const ids = orders.flatMap((o) => (o.id ? [`MedicationRequest/${o.id}`] : []));
  if (!ids.length) return {};
  return {
    selectionBehavior: 'at-most-one',
    suggestions: [
      {
        label: 'Remove the ketamine order',
        uuid: uuidFromKey(`${cardKey}:remove`),
        isRecommended,
        actions: [{ type: 'delete', description: 'Remove the ketamine order', resourceId: ids }],
      },
    ],
  };
}

function uncheckedOrderCard(notCovered: UncheckedCondition[], orderKey: string, options: CardOptions): Card {
  return {
    uuid: uuidFromKey(`cds:order-sign:${orderKey}:unchecked`),
    summary: summary(`Ketamine order: ${plural(notCovered.length, 'eligibility check')} could not run (data missing)`),
    detail: notCovered.map((u) => `- Not enough data on record to check: ${u.description}`).join('\n'),
    indicator: 'warning',
    source: { label: options.sourceLabel },
  };
}

/** What a hook's cards leave out when the patient's merged records went unread (mergedRecordsUnreadCards). */
const UNREAD_RECORDS_LEAVE_OUT = {
  'patient-view': 'their ketamine care plans, contraindications and checks due are not shown here',
  'appointment-book': 'their ketamine sessions and contraindications were not checked against this booking',
} as const;

/**
 * patient-view and appointment-book: the patient's other records (a merge, `Patient.link`) not followed, the EHR's
 * server refusing to give the Patient (`linksUnread`, as `HTTP 403`): what the cards show is this record's alone, and
 * one card says so (since session 51, patient-view; 52, appointment-book; before, nothing did). None when the links
 * were read.
 */
export function mergedRecordsUnreadCards(
  patientId: string,
  linksUnread: string | undefined,
  options: CardOptions,
  hook: keyof typeof UNREAD_RECORDS_LEAVE_OUT = 'patient-view',
): Card[] {
  if (!linksUnread) return [];
  return [
    {
      uuid: uuidFromKey(`cds:${hook}:Patient/${patientId}:links-unread`),
      summary: summary("Ketamine care plans: the patient's merged records were not read"),
      detail: `The FHIR server refused to give the Patient (${linksUnread}), so records the EHR merged into this one were not followed: ${UNREAD_RECORDS_LEAVE_OUT[hook]}. Look them up on the other records, or give this service read access to Patients.`,
      indicator: 'info',
      source: { label: options.sourceLabel },
    },
  ];
}

/**
 * order-sign: draft orders naming a Medication the service could not read (on the EHR's own server, say): whether
 * they are ketamine cannot be told, so the contraindication check did not run for them, and the card says so.
 */
export function unresolvedMedicationCard(orders: MedicationRequest[], options: CardOptions): Card[] {
  if (!orders.length) return [];
  const lines = orders.map((o) => {
    const medication = o.medicationReference;
    // The Medication's reference stays: it is what could not be read, and what to fix.
    const named = medication?.display ? `${medication.display} (${medication.reference})` : medication?.reference;
    return `- A draft order names ${named}`;
  });
  return [
    {
      uuid: uuidFromKey(`cds:order-sign:${orders.map((o) => o.medicationReference?.reference).join(',')}:unresolved`),
      summary: summary(
        `Medication not found: ketamine contraindication check did not run (${plural(orders.length, 'order')})`,
      ),
      detail: [
        ...lines,
        '',
        "The Medication is not in the request, and the FHIR server did not have it or did not answer. If it is ketamine, check the patient's " +
          'contraindications before signing, or send the Medication in the draft orders (contained or as an entry).',
      ].join('\n'),
      indicator: 'warning',
      source: { label: options.sourceLabel },
    },
  ];
}

/**
 * order-sign: a patient's ketamine orders whose records (conditions, vitals, contraindications on record) could not
 * be read: the check did not run, and the clinician is told so rather than shown nothing.
 */
export function recordsUnreadableCard(orders: MedicationRequest[], why: string, options: CardOptions): Card[] {
  const refs = orderRefs(orders);
  return [
    {
      uuid: uuidFromKey(`cds:order-sign:${refs.join(',')}:unreadable`),
      summary: summary("Ketamine contraindication check could not run: the patient's records could not be read"),
      detail: [
        `The patient's conditions, vital signs and recorded contraindications could not be read (${why}).`,
        "Check the patient's contraindications before signing.",
      ].join('\n\n'),
      indicator: 'warning',
      source: { label: options.sourceLabel },
    },
  ];
}
