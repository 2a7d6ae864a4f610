import { Injectable } from '@nestjs/common';
import { formatHumanName } from '@medplum/core';
import type { HumanName, Resource, Task } from '@medplum/fhirtypes';
import { OutcomeException, TASK_OWNER_REFERENCE, unprocessable } from '@kc/common';
import { assign, holdsWhatWasAsked } from './task-decisions';
import { DecisionWriter } from './task-review.service';
import type { DecisionInput } from './task-decision.service';

type Owner = NonNullable<Task['owner']>;

/**
 * Who is to do a Task (Task.owner, what an EHR's work queue reads): a clinician takes it, hands it to a colleague, or
 * gives it back. Any open Task, approved or not; its status and state stay as they are. Like a decision it needs the
 * version the clinician saw and leaves a Provenance (activity `assign` or `unassign`), in one transaction.
 */
@Injectable()
export class TaskAssignmentService {
  constructor(private readonly writer: DecisionWriter) {}

  /** To `owner` (a reference), or to the caller when absent. */
  async assign(input: DecisionInput & { owner?: string }): Promise<Task> {
    const reference = input.owner ?? input.caller.fhirUser;
    if (!reference || !TASK_OWNER_REFERENCE.test(reference))
      throw unprocessable(
        'Taking a task needs a token that names its Practitioner (claim fhirUser); or give the owner, e.g. Practitioner/123',
      );
    const [task, owner] = await Promise.all([
      this.writer.read<Task>('Task', input.taskId),
      reference === input.caller.fhirUser ? { reference, display: input.caller.display } : this.named(reference),
    ]);
    return this.setOwner(input, task, owner, 'assign');
  }

  /** Nobody's: back to the clinic's list of Tasks no one has taken. */
  async unassign(input: DecisionInput): Promise<Task> {
    return this.setOwner(input, await this.writer.read<Task>('Task', input.taskId), undefined, 'unassign');
  }

  private async setOwner(input: DecisionInput, task: Task, owner: Owner | undefined, decision: string): Promise<Task> {
    return this.writer.write({
      current: task,
      seenVersion: input.seenVersion,
      caller: input.caller,
      decision,
      change: (t) => assign(t, owner, new Date()),
      asked: (t) => holdsWhatWasAsked.owner(t, owner),
    });
  }

  /** The owner as the FHIR server has it, named for whoever reads the Task; 422 when the server has no such one. */
  private async named(reference: string): Promise<Owner> {
    const [, type, id] = TASK_OWNER_REFERENCE.exec(reference)!;
    try {
      return { reference, display: displayOf(await this.writer.read<Resource>(type as Resource['resourceType'], id)) };
    } catch (err) {
      if (err instanceof OutcomeException && err.getStatus() === 404)
        throw unprocessable(`${reference} is not on the FHIR server: a Task is assigned to someone it knows`);
      throw err;
    }
  }
}

function displayOf(resource: Resource): string | undefined {
  switch (resource.resourceType) {
    case 'Practitioner': {
      const names: HumanName[] = resource.name ?? [];
      const name = names.find((n) => n.use === 'official') ?? names[0];
      return name ? formatHumanName(name) || undefined : undefined;
    }
    case 'PractitionerRole':
      return resource.practitioner?.display;
    case 'Organization':
    case 'CareTeam':
      return resource.name;
    default:
      return undefined;
  }
}
