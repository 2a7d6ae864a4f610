import { ArgumentsHost, Catch, ExceptionFilter, HttpException, Logger } from '@nestjs/common';
import type { OperationOutcome } from '@medplum/fhirtypes';
import type { Response } from 'express';
import { FhirHttpError, FhirNotFoundError, FhirUnavailableError, FhirVersionConflictError } from '@kc/fhir';
import { operationOutcome } from '@kc/common';

/**
 * Every error leaves the API as a FHIR OperationOutcome with a fitting status. Unknown errors become a
 * generic 500 whose details stay in the log (without request bodies, which may hold patient data).
 */
@Catch()
export class OperationOutcomeFilter implements ExceptionFilter {
  private readonly logger = new Logger('Errors');

  catch(exception: unknown, host: ArgumentsHost): void {
    const response = host.switchToHttp().getResponse<Response>();
    const [status, body] = this.toOutcome(exception);
    if (status >= 500) this.logger.error(`${status} ${(exception as Error)?.name}: ${(exception as Error)?.message}`);
    if (response.headersSent) return;
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
    // body-parser errors (malformed JSON, too large) carry their own 4xx status.
    const parserStatus = (exception as { status?: number; type?: string })?.status;
    if (typeof parserStatus === 'number' && parserStatus >= 400 && parserStatus < 500) {
      const type = (exception as { type?: string }).type;
      const text =
        type === 'entity.parse.failed'
          ? 'Request body is not valid JSON'
          : type === 'entity.too.large'
            ? 'Request body is too large'
            : 'Bad request body';
      return [parserStatus, operationOutcome('error', codeForStatus(parserStatus), text)];
    }
    if (exception instanceof FhirVersionConflictError) {
      return [
        exception.status,
        operationOutcome('error', 'conflict', 'The resource was changed by someone else; reload it and try again'),
      ];
    }
    if (exception instanceof FhirNotFoundError)
      return [404, operationOutcome('error', 'not-found', 'Resource not found on the FHIR server')];
    if (exception instanceof FhirUnavailableError)
      return [503, operationOutcome('error', 'transient', 'The FHIR server is unavailable; try again later')];
    if (exception instanceof FhirHttpError && exception.status >= 400 && exception.status < 500) {
      return [422, { ...(exception.outcome ?? operationOutcome('error', 'processing', exception.message)) }];
    }
    return [500, operationOutcome('fatal', 'exception', 'Internal error')];
  }
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
  if (status === 413) return 'too-costly';
  if (status === 429) return 'throttled';
  if (status === 422) return 'processing';
  return status < 500 ? 'invalid' : 'exception';
}
