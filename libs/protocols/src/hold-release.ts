import type { DetectedIssue } from '@medplum/fhirtypes';
import { isInfusionInError } from './infusion-in-error';
import { isInfusionNotLinked } from './infusion-not-linked';
import { isProtocolNotFound } from './protocol-not-found';

/**
 * What releases an order an issue holds, in words: the end of the held order's reason (and its Task's), what an EHR,
 * a pharmacy or a pump's screen shows, so whoever reads it knows what is awaited. A contraindication, an effect
 * reported or answers not read: a clinician's override with a reason. Before session 48 every hold said that, though
 * a protocol posted again, an infusion linked, or a plan planned again without an infusion also releases it. The
 * clinic's alert of held orders says the same (`orders`: how many it tells of).
 */
export function howReleased(issue: DetectedIssue, orders = 1): string {
  const it = orders === 1 ? 'it' : 'them';
  if (isProtocolNotFound(issue))
    return `Posting its care plan's protocol again on the FHIR server, or a clinician's override with a reason, releases ${it}.`;
  if (isInfusionInError(issue))
    return `A clinician planning again without the infusion, or putting the plan right and overriding with a reason, releases ${it}.`;
  if (isInfusionNotLinked(issue))
    return `A clinician linking the infusion to its care plan, or recording that it was not a session of the plan, releases ${it}.`;
  return `A clinician's override with a reason releases ${it}.`;
}
