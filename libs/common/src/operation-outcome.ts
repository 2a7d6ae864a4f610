import type { OperationOutcome, OperationOutcomeIssue } from '@medplum/fhirtypes';
import { HttpException } from '@nestjs/common';

export type IssueCode = OperationOutcomeIssue['code'];

/**
 * `text` is for the person in front of a screen (a clinician reads it on the page); `diagnostics`, when given, for
 * the integrator (resource references, the API call that resolves it), as FHIR splits them.
 */
export function operationOutcome(
  severity: OperationOutcomeIssue['severity'],
  code: IssueCode,
  text: string,
  expression?: string[],
  diagnostics?: string,
): OperationOutcome {
  return {
    resourceType: 'OperationOutcome',
    issue: [
      {
        severity,
        code,
        details: { text },
        ...(diagnostics ? { diagnostics } : {}),
        ...(expression ? { expression } : {}),
      },
    ],
  };
}

/** An HTTP error whose body is a FHIR OperationOutcome; throw it from anywhere in a request. */
export class OutcomeException extends HttpException {
  /** `related`: issues after the first, each about one thing it names (an order the refusal is about, say). */
  constructor(
    status: number,
    code: IssueCode,
    text: string,
    expression?: string[],
    diagnostics?: string,
    related: OperationOutcomeIssue[] = [],
  ) {
    const outcome = operationOutcome('error', code, text, expression, diagnostics);
    super({ ...outcome, issue: [...outcome.issue, ...related] }, status);
  }
}

export const badRequest = (text: string, expression?: string[]) =>
  new OutcomeException(400, 'invalid', text, expression);
export const notFound = (text: string) => new OutcomeException(404, 'not-found', text);
export const conflict = (text: string, status: 409 | 412 = 409, expression?: string[]) =>
  new OutcomeException(status, 'conflict', text, expression);
export const unprocessable = (text: string, expression?: string[], diagnostics?: string) =>
  new OutcomeException(422, 'business-rule', text, expression, diagnostics);
