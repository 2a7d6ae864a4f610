import type { CodeableConcept, DetectedIssue, HumanName, Observation, Patient } from '@medplum/fhirtypes';
import { observedAt, scoreCodes, scoreValue } from '@kc/followups';
import {
  contraindicationState,
  extractedChoices,
  isInfusionInError,
  isInfusionNotLinked,
  isReportedEffect,
  isUnreadAnswers,
  linkedPatientRecords,
  replacedBy,
} from '@kc/protocols';

/**
 * What the clinician page shows of a patient's records, built from them as read (pure): the patient's summary, their
 * latest scores and reported effects, a plan's issues. The worklist's rows and the patient view share them.
 */

export interface PatientSummary {
  reference: string;
  name?: string;
  birthDate?: string;
  age?: number;
  gender?: string;
  /** The person's other records this one links (`Patient.link`: a merge, records kept apart), `Patient/<id>`. */
  linkedRecords?: string[];
  /** The record this one was merged into in the EHR (`replaced-by`): its plans stay under this one. */
  mergedInto?: string;
  /** That record's name (the patient's name now, which the EHR shows). */
  mergedIntoName?: string;
}

export interface ContraindicationView {
  id: string;
  /**
   * A contraindication, an effect reported at a check, a check whose answers could not be read here, or an infusion
   * recorded in error after its follow-ups (planned again without it: POST /detected-issues/{id}/$replan), or an
   * infusion charted naming no care plan that may be a session of this one (linked: POST .../$link-infusion).
   */
  kind: 'contraindication' | 'reported-effect' | 'unread-answers' | 'infusion-in-error' | 'infusion-not-linked';
  text: string;
  severity?: string;
  /** unresolved blocks approval; overridden = a clinician's mitigation is on record */
  state: 'unresolved' | 'overridden' | 'closed';
  evidence: string[];
  /** The version an override names (If-Match): the page's Override button sends it. */
  versionId?: string;
  /** The orders it holds (approved before it was found): `MedicationRequest/<id>`. */
  holds: string[];
}

export interface ScoreView {
  code: string;
  label: string;
  value?: number | string;
  unit?: string;
  date?: string;
}

/** The effects a patient reported at their latest recorded check (the check Questionnaire's extracted choices). */
export interface EffectsView {
  date?: string;
  reported: string[];
  /** False when the patient reported none ("No effects"). */
  any: boolean;
}

/** A patient's summary; `read`: the patients read, by reference (the record it was merged into among them). */
export function summaryOf(reference: string, read: Map<string, Patient | undefined>, now: Date): PatientSummary {
  const patient = read.get(reference);
  const linked = linkedPatientRecords(patient);
  const mergedInto = patient && replacedBy(patient);
  const keptName = mergedInto ? displayName(read.get(mergedInto)?.name) : undefined;
  return {
    reference,
    name: patient ? displayName(patient.name) : undefined,
    birthDate: patient?.birthDate,
    age: patient?.birthDate ? ageOn(patient.birthDate, now) : undefined,
    gender: patient?.gender,
    ...(linked.length ? { linkedRecords: linked } : {}),
    ...(mergedInto ? { mergedInto } : {}),
    ...(keptName ? { mergedIntoName: keptName } : {}),
  };
}

/** The latest reading of each score the protocols judge response by (their outcome-driven timing, fhir-profiles). */
export function latestScores(scores: CodeableConcept[], observations: Observation[]): ScoreView[] {
  const out: ScoreView[] = [];
  for (const score of scores) {
    const codes = new Set(scoreCodes({ scores: [score] }));
    const latest = observations
      .filter((o) => o.status !== 'entered-in-error' && o.code?.coding?.some((c) => codes.has(`${c.system}|${c.code}`)))
      .filter((o) => scoreValue(o, codes) !== undefined)
      // Latest first; at the same time, the coding listed first (a PEG mean before its panel).
      .sort(
        (a, b) =>
          Date.parse(observedAt(b) ?? '0') - Date.parse(observedAt(a) ?? '0') ||
          codingRank(score, a) - codingRank(score, b),
      )[0];
    if (!latest) continue;
    out.push({
      code: latest.code?.coding?.find((c) => codes.has(`${c.system}|${c.code}`))?.code ?? '',
      label: score.text ?? score.coding?.[0]?.display ?? 'Score',
      value: scoreValue(latest, codes),
      unit: latest.valueQuantity?.unit,
      date: observedAt(latest),
    });
  }
  return out;
}

/**
 * The effects of the latest recorded check: its Observations (those derived from the same response, else of the same
 * instant) coded as a reported effect, in words.
 */
export function latestEffects(
  { codes, nothingReported }: ReturnType<typeof extractedChoices>,
  observations: Observation[],
): EffectsView | undefined {
  const wanted = new Set(codes);
  const reported = observations.filter(
    (o) => o.status !== 'entered-in-error' && o.code?.coding?.some((c) => wanted.has(`${c.system}|${c.code}`)),
  );
  const latest = reported.sort((a, b) => Date.parse(observedAt(b) ?? '0') - Date.parse(observedAt(a) ?? '0'))[0];
  if (!latest) return undefined;
  const sameCheck = (o: Observation) =>
    latest.derivedFrom?.[0]?.reference
      ? o.derivedFrom?.[0]?.reference === latest.derivedFrom[0].reference
      : observedAt(o) === observedAt(latest);
  const answers = reported.filter(sameCheck).flatMap((o) => o.valueCodeableConcept?.coding?.slice(0, 1) ?? []);
  return {
    date: observedAt(latest),
    reported: answers.map((c) => c.display ?? c.code ?? ''),
    any: answers.some((c) => !nothingReported.has(`${c.system}|${c.code}`)),
  };
}

const VIEW_STATE = { withdrawn: 'closed', overridden: 'overridden', unresolved: 'unresolved' } as const;

export function issueView(issue: DetectedIssue): ContraindicationView {
  return {
    id: issue.id!,
    kind: issueKind(issue),
    text: issue.code?.text ?? issue.code?.coding?.[0]?.display ?? issue.code?.coding?.[0]?.code ?? 'Contraindication',
    severity: issue.severity,
    state: VIEW_STATE[contraindicationState(issue)],
    evidence: (issue.evidence ?? [])
      .flatMap((e) => e.detail ?? [])
      .map((d) => d.display ?? d.reference ?? '')
      .filter(Boolean),
    versionId: issue.meta?.versionId,
    // Only while it is unresolved: an override released them (they stay named on the issue, as the record of it).
    holds: (contraindicationState(issue) === 'unresolved' ? (issue.implicated ?? []) : [])
      .map((r) => r.reference ?? '')
      .filter((r) => /^(MedicationRequest|ServiceRequest|CommunicationRequest)\//.test(r)),
  };
}

function issueKind(issue: DetectedIssue): ContraindicationView['kind'] {
  if (isUnreadAnswers(issue)) return 'unread-answers';
  if (isReportedEffect(issue)) return 'reported-effect';
  if (isInfusionInError(issue)) return 'infusion-in-error';
  if (isInfusionNotLinked(issue)) return 'infusion-not-linked';
  return 'contraindication';
}

export function displayName(names: HumanName[] | undefined): string | undefined {
  const name = names?.find((n) => n.use === 'official') ?? names?.[0];
  if (!name) return undefined;
  if (name.text) return name.text;
  return [...(name.given ?? []), name.family].filter(Boolean).join(' ') || undefined;
}

export function ageOn(birthDate: string, now: Date): number | undefined {
  const m = /^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?/.exec(birthDate);
  if (!m) return undefined;
  const [y, mo, d] = [Number(m[1]), Number(m[2] ?? 1), Number(m[3] ?? 1)];
  let age = now.getUTCFullYear() - y;
  if (now.getUTCMonth() + 1 < mo || (now.getUTCMonth() + 1 === mo && now.getUTCDate() < d)) age -= 1;
  return age;
}

function codingRank(score: CodeableConcept, o: Observation): number {
  const rank = (score.coding ?? []).findIndex((c) =>
    o.code?.coding?.some((oc) => oc.system === c.system && oc.code === c.code),
  );
  return rank < 0 ? Number.MAX_SAFE_INTEGER : rank;
}
