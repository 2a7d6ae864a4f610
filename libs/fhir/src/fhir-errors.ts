import type { OperationOutcome } from '@medplum/fhirtypes';

/** A FHIR server answered with a non-2xx status. Carries the server's OperationOutcome when it sent one. */
export class FhirHttpError extends Error {
  constructor(
    readonly status: number,
    readonly outcome: OperationOutcome | undefined,
    message: string,
  ) {
    super(message);
  }
}

/**
 * A version conflict. HAPI answers a stale If-Match with 409, Medplum (and the spec) with 412;
 * callers only need to know "someone else changed it first".
 */
export class FhirVersionConflictError extends FhirHttpError {}

export class FhirNotFoundError extends FhirHttpError {}

/**
 * A write of what was read, refused because it changed (409/412) or was deleted (404/410) since: someone else acted
 * first. A sweep leaves it to its next run, which reads it again.
 */
export function isStaleWrite(err: unknown): err is FhirVersionConflictError | FhirNotFoundError {
  return err instanceof FhirVersionConflictError || err instanceof FhirNotFoundError;
}

/**
 * What a writer does with a stale write (isStaleWrite): `skip` it, for the next periodic run to read again (a sweep), or
 * `fail`, for a job told of the change to run again in seconds instead of leaving it to that run.
 */
export type RaceHandling = 'skip' | 'fail';

/** Whether `err` is a stale write this writer leaves to its next run; anything else is thrown on. */
export function skipsStaleWrite(err: unknown, raced: RaceHandling): boolean {
  return raced === 'skip' && isStaleWrite(err);
}

/** The server could not be reached, or kept failing after retries. */
export class FhirUnavailableError extends Error {
  constructor(
    message: string,
    override readonly cause?: unknown,
    /** When the server said to come back (429/503 Retry-After), in seconds. */
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
  }
}

/** The caller's time budget ran out before the server answered (FhirClient.within). */
export class FhirOutOfTimeError extends FhirUnavailableError {}

/**
 * The server answered a transaction without confirming every entry: what was written is unknown, so it is not
 * reported as written (the API answers 502, a job retries: every write the service makes is safe to repeat).
 */
export class FhirTransactionNotConfirmedError extends FhirUnavailableError {}

export function outcomeText(outcome: OperationOutcome | undefined): string | undefined {
  return (
    outcome?.issue
      ?.map((i) => i.details?.text ?? i.diagnostics ?? i.code)
      .filter(Boolean)
      .join('; ') || undefined
  );
}
