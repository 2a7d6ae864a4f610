import type { Bundle, Resource } from '@medplum/fhirtypes';
import type { AuthenticatedRequest } from '@kc/auth';
import { isResourceId } from '@kc/common';
import { patientsIn } from './access-audit-event';
import type { DescribeAccess } from './patient-access.decorator';

/** What each audited route's access is about (its @AuditsPatientAccess): the patients by request and answer. */

/** GET /patients/:id/timeline: that patient's record, and the person's other records it showed (a merge). */
export const timelineAccess: DescribeAccess = (request, answer) => {
  const linked = (answer as { patient?: { linkedRecords?: string[] } } | undefined)?.patient?.linkedRecords ?? [];
  return {
    interaction: 'read',
    patients: unique(patientRefs([String(request.params.id), ...linked])),
  };
};

/**
 * GET /worklist and /worklist/view when looking for one patient (`patient`) or by name (`name`): the patients whose
 * Tasks were shown. The clinic's whole work queue (no patient or name) is not audited: every clinician opens it all
 * day, and it shows no more than the task list (see docs/guide/access-audit.md).
 */
export const worklistAccess: DescribeAccess = (request, answer) => {
  const { patient, name } = request.query;
  if (patient === undefined && name === undefined) return undefined;
  const items = (answer as { items?: { patient?: string }[] } | undefined)?.items ?? [];
  return {
    interaction: 'search',
    patients: unique([...patientRefs([patient]), ...patientRefs(items.map((i) => i.patient))]),
  };
};

/** GET /fhir/:type (EHR read API): the patients the search named and those whose resources it returned. */
export const ehrSearchAccess: DescribeAccess = (request, answer) => {
  const { patient, subject, for: forPatient, entity } = request.query;
  // An administrator reading the audit trail of a patient (AuditEvent?entity=Patient/x) is reading about them too.
  const about = typeof entity === 'string' && entity.startsWith('Patient/') ? entity : undefined;
  const returned = ((answer as Bundle | undefined)?.entry ?? []).flatMap((e) => (e.resource ? [e.resource] : []));
  return {
    interaction: 'search',
    patients: unique([...patientRefs([patient, subject, forPatient, about]), ...patientsIn(returned)]),
  };
};

/** GET /fhir/:type/:id: the resource and its patient. */
export const ehrReadAccess: DescribeAccess = (request, answer) => {
  const { type, id } = request.params;
  return {
    interaction: 'read',
    resource: isResourceId(String(id)) ? `${String(type)}/${String(id)}` : undefined,
    patients: answer ? patientsIn([answer as Resource]) : [],
  };
};

/** PlanDefinition/$apply: the subject's data was read (and, persisted, a plan written for them). */
export const applyAccess: DescribeAccess = (request, answer) => {
  const body = request.body as {
    parameter?: { name?: string; valueString?: string; valueReference?: { reference?: string } }[];
  };
  const subject = body?.parameter?.find((p) => p.name === 'subject');
  return {
    interaction: 'operation',
    patients: unique([
      ...patientRefs([subject?.valueReference?.reference ?? subject?.valueString, request.query.subject]),
      ...(answer && (answer as Resource).resourceType === 'CarePlan' ? patientsIn([answer as Resource]) : []),
    ]),
  };
};

/**
 * A CDS Hooks call: its context patient, and every patient whose records it read (another patient's order, the records
 * a merge links: since session 49), for the EHR user the cards are shown to.
 */
export const cdsHookAccess: DescribeAccess = (request) => {
  const context = (request.body as { context?: { patientId?: unknown; userId?: unknown } } | undefined)?.context;
  const userId = typeof context?.userId === 'string' && /^[A-Za-z]+\/[A-Za-z0-9\-.]{1,64}$/.test(context.userId);
  const read = (request as { patientsRead?: string[] }).patientsRead ?? [];
  return {
    interaction: 'operation',
    patients: unique(patientRefs([context?.patientId, ...read])),
    onBehalfOf: userId ? (context.userId as string) : undefined,
    client: (request as { cdsClient?: { issuer?: string } }).cdsClient?.issuer,
  };
};

/** `Patient/<id>` for each value that is a Patient id or reference, else nothing (a malformed one names nobody). */
function patientRefs(values: unknown[]): string[] {
  return values.flatMap((value) => {
    if (typeof value !== 'string') return [];
    const id = value.startsWith('Patient/') ? value.slice('Patient/'.length) : value;
    return isResourceId(id) ? [`Patient/${id}`] : [];
  });
}

function unique(values: string[]): string[] {
  return [...new Set(values)];
}

/** A bulk export's kick-off, as its handler found whose data it is (`exportPatients`). */
export type ExportKickOffRequest = AuthenticatedRequest & { exportPatients?: string[] };

/**
 * A bulk export's kick-off: the patients whose data it is (those a POST named, a Group's members), else a query over
 * every patient's data (no patient named).
 */
export const exportKickOffAccess: DescribeAccess = (request) => ({
  interaction: 'search',
  patients: unique(patientRefs((request as ExportKickOffRequest).exportPatients ?? [])),
});

/** A bulk export's file downloaded: every patient whose data it held. */
export const exportFileAccess: DescribeAccess = (_request, answer) => {
  if (typeof answer !== 'string') return { interaction: 'search', patients: [] };
  const resources = answer
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as Resource);
  return { interaction: 'search', patients: patientsIn(resources) };
};

/** An EHR integration's Subscription created: a standing query, with the patients its criteria name. */
export const subscriptionCreateAccess: DescribeAccess = (request) => {
  const criteria = (request.body as { criteria?: unknown } | undefined)?.criteria;
  const query = typeof criteria === 'string' ? (criteria.split('?')[1] ?? '') : '';
  const params = new URLSearchParams(query);
  const named = [...params.getAll('patient'), ...params.getAll('subject')].flatMap((v) => v.split(','));
  return { interaction: 'search', patients: unique(patientRefs(named)) };
};
