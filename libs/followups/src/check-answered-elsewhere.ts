import type { QuestionnaireResponse, Task } from '@medplum/fhirtypes';
import { isApproved, isAwaitingApproval, isOpen } from '@kc/task-states';

/** A canonical without its `|version`. */
const urlOf = (canonical: string | undefined) => canonical?.split('|')[0];

/** The Questionnaire a Task asks to be answered with (CPG cpg-questionnairetask: `input.valueCanonical`). */
export function questionnaireAsked(task: Task): string | undefined {
  return urlOf(task.input?.map((i) => i.valueCanonical).find(Boolean));
}

export type CheckAnswered = { task: Task } | { none: string };

/**
 * The open check that answers written on their own answer: a patient portal or an EHR that writes a
 * QuestionnaireResponse and does not touch the Task (as SDC's form filler would, with Task.output). It is the patient's
 * open check asking that Questionnaire:
 * - of the infusion the answers name (`partOf`, the Procedure: the check's `reasonReference`), whatever its window;
 * - else, among those of the plan they name (`basedOn`, the CarePlan) or of every plan, the one whose due window
 *   started last before the answers were given: two infusions in a week and one set of answers, which tell how the
 *   patient is now, after the later infusion (the earlier check stays open, overdue, for the clinic to call about).
 * Answers that a Task already names were taken (a notification again, a retry, or this service's own `$complete`):
 * none, so nothing is written twice. `tasks`: the patient's Tasks of the kinds done by answering a Questionnaire, any
 * status.
 */
export function checkAnsweredBy(response: QuestionnaireResponse, tasks: Task[]): CheckAnswered {
  if (!response.id) return { none: 'not a stored QuestionnaireResponse' };
  if (response.status !== 'completed' && response.status !== 'amended')
    return { none: `its answers are not final (${response.status})` };
  const reference = `QuestionnaireResponse/${response.id}`;
  if (tasks.some((t) => t.output?.some((o) => o.valueReference?.reference === reference)))
    return { none: 'a Task already names these answers' };
  const questionnaire = urlOf(response.questionnaire);
  const patient = response.subject?.reference;
  if (!questionnaire || !patient?.startsWith('Patient/')) return { none: 'it names no questionnaire or no patient' };
  const answered = Date.parse(response.authored ?? response.meta?.lastUpdated ?? '');
  if (Number.isNaN(answered)) return { none: 'it does not say when it was answered' };
  const open = tasks.filter(
    (t) =>
      t.for?.reference === patient &&
      questionnaireAsked(t) === questionnaire &&
      (isAwaitingApproval(t) || isApproved(t)) &&
      isOpen(t),
  );
  const infusions = referencesOf(response.partOf, 'Procedure');
  if (infusions.length) {
    const ofInfusion = open.find((t) => infusions.includes(t.reasonReference?.reference ?? ''));
    return ofInfusion ? { task: ofInfusion } : { none: 'the check of the infusion they name is not open' };
  }
  const plans = referencesOf(response.basedOn, 'CarePlan');
  const candidates = plans.length
    ? open.filter((t) => t.basedOn?.some((b) => plans.includes(b.reference ?? '')))
    : open;
  const startOf = (t: Task) => Date.parse(t.restriction?.period?.start ?? '');
  const due = candidates.filter((t) => startOf(t) <= answered).sort((a, b) => startOf(b) - startOf(a));
  if (due[0]) return { task: due[0] };
  if (plans.length && !candidates.length) return { none: 'no open check of the plan they name asks these questions' };
  return {
    none: candidates.length
      ? 'answered before any of its open checks was due'
      : 'no open check of the patient asks these questions',
  };
}

/** The references of these types among a list (`Procedure/1`...). */
function referencesOf(list: { reference?: string }[] | undefined, type: string): string[] {
  return (list ?? []).map((r) => r.reference ?? '').filter((r) => r.startsWith(`${type}/`));
}

/**
 * The check as if the EHR had completed it with these answers (`completed`, the answers in `output`, ended when they
 * were given): what adoptCheckDoneElsewhere then records as done.
 */
export function answeredCheck(task: Task, response: QuestionnaireResponse & { id: string }): Task {
  return {
    ...task,
    status: 'completed',
    output: [
      ...(task.output ?? []),
      {
        type: { text: 'answers' },
        valueReference: { reference: `QuestionnaireResponse/${response.id}`, display: 'Answers given' },
      },
    ],
    executionPeriod: { ...task.executionPeriod, end: response.authored ?? task.executionPeriod?.end },
  };
}
