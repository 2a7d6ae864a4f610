import { ArgumentsHost, Catch, ExceptionFilter, HttpException, Logger, Optional } from '@nestjs/common';
import type { AuthenticatedRequest } from '@kc/auth';
import type { OperationOutcome } from '@medplum/fhirtypes';
import type { Response } from 'express';
import {
  FhirHttpError,
  FhirTransactionNotConfirmedError,
  FhirUnavailableError,
  FhirVersionConflictError,
} from '@kc/fhir';
import { operationOutcome } from '@kc/common';
import { isRedisUnavailable, QueueUnavailableError } from '@kc/queue';
import { AccessDenials } from '../audit/access-denials';

/**
 * Every error leaves the API as a FHIR OperationOutcome with a fitting status. Unknown errors become a
 * generic 500 whose details stay in the log (without request bodies, which may hold patient data).
 */
@Catch()
export class OperationOutcomeFilter implements ExceptionFilter {
  private readonly logger = new Logger('Errors');

  constructor(@Optional() private readonly denials?: AccessDenials) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    const response = host.switchToHttp().getResponse<Response>();
    const [status, body] = this.toOutcome(exception);
    this.denials?.record(host.switchToHttp().getRequest<AuthenticatedRequest>(), status);
    if (status >= 500) this.logger.error(`${status} ${(exception as Error)?.name}: ${(exception as Error)?.message}`);
    if (response.headersSent) return;
    // Unavailable or throttled: tell the client when to come back (the FHIR server's own advice when it gave one).
    if (status === 503) {
      const advised = exception instanceof FhirUnavailableError ? exception.retryAfterSeconds : undefined;
      response.setHeader('Retry-After', String(advised ?? RETRY_AFTER_SECONDS));
    }
    response.status(status).type('application/fhir+json').send(JSON.stringify(body));
  }

  private toOutcome(exception: unknown): [number, OperationOutcome] {
    if (exception instanceof HttpException) {
      const status = exception.getStatus();
      const payload = exception.getResponse();
      if (typeof payload === 'object' && (payload as OperationOutcome).resourceType === 'OperationOutcome')
        return [status, payload as OperationOutcome];
      const message = typeof payload === 'string' ? payload : (payload as { message?: string | string[] }).message;
      const text = Array.isArray(message) ? message.join('; ') : (message ?? exception.message);
      return [status, operationOutcome('error', codeForStatus(status), text)];
    }
    if (exception instanceof FhirHttpError) return upstreamOutcome(exception);
    if (exception instanceof FhirTransactionNotConfirmedError)
      return [
        502,
        operationOutcome(
          'error',
          'incomplete',
          `The FHIR server did not confirm every write (${exception.message}); nothing is reported as saved. Send the request again: it is safe to repeat.`,
        ),
      ];
    if (exception instanceof FhirUnavailableError)
      return [503, operationOutcome('error', 'transient', 'The FHIR server is unavailable; try again later')];
    if (exception instanceof QueueUnavailableError || isRedisUnavailable(exception))
      return [
        503,
        operationOutcome(
          'error',
          'transient',
          'The worklist, job queue and sign-in store (Redis) are unavailable; try again shortly',
        ),
      ];
    // body-parser errors (malformed JSON, too large, too deep) carry their own 4xx status and an `entity.*` type.
    const parser = exception as { status?: unknown; type?: unknown };
    if (typeof parser?.status === 'number' && parser.status >= 400 && parser.status < 500) {
      const text = BODY_ERRORS[String(parser.type)] ?? 'Bad request body';
      return [parser.status, operationOutcome('error', codeForStatus(parser.status), text)];
    }
    return [500, operationOutcome('fatal', 'exception', 'Internal error')];
  }
}

const RETRY_AFTER_SECONDS = 5;

const BODY_ERRORS: Record<string, string> = {
  'entity.parse.failed': 'Request body is not valid JSON',
  'entity.too.large': 'Request body is too large',
  'entity.too.deep': 'Request body nests too deep',
  'encoding.unsupported': 'Request body encoding is not supported',
  'charset.unsupported': 'Request body charset is not supported',
};

/**
 * What the FHIR server answered, passed on faithfully where it is about the request (404, 409, 410, 412, 400,
 * 422, with the server's own issues); a fault of the server, or of this service's credentials there, is a 502.
 */
function upstreamOutcome(error: FhirHttpError): [number, OperationOutcome] {
  const own = error.outcome?.resourceType === 'OperationOutcome' ? error.outcome : undefined;
  if (error instanceof FhirVersionConflictError)
    return [
      error.status === 409 ? 409 : 412,
      operationOutcome('error', 'conflict', 'The resource was changed by someone else; reload it and try again'),
    ];
  if (error.status === 404 || error.status === 410)
    return [error.status, own ?? operationOutcome('error', 'not-found', 'Resource not found on the FHIR server')];
  if ([400, 409, 410, 412, 422].includes(error.status))
    return [error.status, own ?? operationOutcome('error', codeForStatus(error.status), error.message)];
  if (error.status === 429)
    return [503, operationOutcome('error', 'throttled', 'The FHIR server is busy (rate limited); try again shortly')];
  return [502, operationOutcome('error', 'exception', `The FHIR server answered ${error.status}`)];
}

function codeForStatus(
  status: number,
):
  | 'invalid'
  | 'login'
  | 'forbidden'
  | 'not-found'
  | 'conflict'
  | 'too-costly'
  | 'throttled'
  | 'exception'
  | 'processing' {
  if (status === 401) return 'login';
  if (status === 403) return 'forbidden';
  if (status === 404) return 'not-found';
  if (status === 409 || status === 412) return 'conflict';
  if (status === 410) return 'not-found';
  if (status === 413) return 'too-costly';
  if (status === 429) return 'throttled';
  if (status === 422) return 'processing';
  return status < 500 ? 'invalid' : 'exception';
}
