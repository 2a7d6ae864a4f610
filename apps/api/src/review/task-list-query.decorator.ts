import { applyDecorators } from '@nestjs/common';
import { ApiQuery } from '@nestjs/swagger';

/** The query parameters a task list (the worklist, the to-do list) takes, for the OpenAPI document. */
export function ApiTaskListQuery(): MethodDecorator {
  return applyDecorators(
    ApiQuery({ name: 'patient', required: false }),
    ApiQuery({ name: 'protocol', required: false, description: 'protocol id or canonical URL' }),
    ApiQuery({ name: 'kind', required: false, description: 'kind of Task (Task.code), e.g. post-infusion-check' }),
    ApiQuery({
      name: 'owner',
      required: false,
      description:
        "whose Tasks (Task.owner): me (the caller's fhirUser), none (nobody's yet), or e.g. Practitioner/123",
    }),
    ApiQuery({
      name: 'due-before',
      required: false,
      description: "a dateTime, or a date alone: that day from midnight in the clinic's time zone (CLINIC_TIME_ZONE)",
    }),
    ApiQuery({
      name: 'due-after',
      required: false,
      description: "a dateTime, or a date alone: that day from midnight in the clinic's time zone (CLINIC_TIME_ZONE)",
    }),
    ApiQuery({ name: 'overdue', required: false, enum: ['true', 'false'] }),
    ApiQuery({ name: 'count', required: false }),
    ApiQuery({ name: 'cursor', required: false, description: "from the previous page's next link" }),
  );
}
