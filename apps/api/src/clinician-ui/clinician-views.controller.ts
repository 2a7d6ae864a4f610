import { Controller, Get, Param, Query, Req } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { ApiBearerAuth, ApiOperation, ApiQuery, ApiTags } from '@nestjs/swagger';
import type { Request } from 'express';
import type { Patient } from '@medplum/fhirtypes';
import { FhirScopes, Roles, type AuthenticatedRequest } from '@kc/auth';
import { badRequest } from '@kc/common';
import { recordsLinkedFrom } from '@kc/nest-core';
import { linkedPatientRecords } from '@kc/protocols';
import { FhirClient, hasMorePages, matchesOf } from '@kc/fhir';
import { ToDoController } from '../review/to-do.controller';
import { WorklistController } from '../review/worklist.controller';
import { WorklistService } from '../review/worklist.service';
import { taskListAnswer } from '../review/task-list-answer';
import { PatientTimelineService } from './patient-timeline.service';
import { WorklistEnricher, type WorklistItemLike } from './worklist-enricher';
import { AuditsPatientAccess } from '../audit/patient-access.decorator';
import { timelineAccess, worklistAccess } from '../audit/patient-accesses';

interface WorklistAnswer {
  total?: number;
  items: WorklistItemLike[];
  next?: string;
  [key: string]: unknown;
}

/**
 * Patients a name search shows the Tasks of, at most: every one the name matches up to this (read 100 a page); past
 * it, the page asks for more of the name.
 */
const MAX_NAME_MATCHES = 500;
const NAME_MATCHES_PER_PAGE = 100;

/** The task lists the page shows: awaiting approval, and approved but not yet done. */
type TaskListPath = 'worklist' | 'to-do';

/**
 * What the clinician page shows, as JSON: GET /worklist/view is GET /worklist (same parameters, same paging, its
 * `next` link pointing here) with each item decorated by WorklistEnricher, plus `name` (the Tasks of every patient the
 * name matches, up to MAX_NAME_MATCHES, in one list paged the same way);
 * GET /to-do/view is the same over GET /to-do; GET /patients/{id}/timeline is the patient view.
 */
@ApiTags('review')
@ApiBearerAuth()
@Roles('clinician')
@Controller()
export class ClinicianViewsController {
  constructor(
    private readonly moduleRef: ModuleRef,
    private readonly enricher: WorklistEnricher,
    private readonly timelines: PatientTimelineService,
    private readonly fhir: FhirClient,
  ) {}

  @FhirScopes({ resourceType: 'Task', interaction: 's' })
  @Get('worklist/view')
  @AuditsPatientAccess(worklistAccess)
  @ApiOperation({ summary: 'The worklist with patient name and age, protocol and phase, contraindications, scores' })
  @ApiQuery({ name: 'name', required: false, description: 'patient name search (FHIR Patient?name=)' })
  view(@Query() query: Record<string, unknown>, @Req() req: Request) {
    return this.listView('worklist', query, req);
  }

  @FhirScopes({ resourceType: 'Task', interaction: 's' })
  @Get('to-do/view')
  @AuditsPatientAccess(worklistAccess)
  @ApiOperation({ summary: 'The to-do list (approved, not yet done), decorated as the worklist view is' })
  @ApiQuery({ name: 'name', required: false, description: 'patient name search (FHIR Patient?name=)' })
  toDoView(@Query() query: Record<string, unknown>, @Req() req: Request) {
    return this.listView('to-do', query, req);
  }

  private async listView(list: TaskListPath, query: Record<string, unknown>, req: Request) {
    const { name, ...rest } = query;
    if (name !== undefined && (typeof name !== 'string' || !name.trim() || name.length > 100))
      throw badRequest('name must be a non-empty text of at most 100 characters');
    let answer: WorklistAnswer;
    if (typeof name === 'string') {
      if (rest.patient !== undefined) throw badRequest('Use either name or patient');
      // The Tasks of every patient the name matches, in one list: soonest due first, paged by the list's cursor.
      const { ids, more } = await this.patientsNamed(name.trim());
      const lists = this.moduleRef.get(WorklistService, { strict: false });
      const parsed = { ...lists.parse(rest, (req as AuthenticatedRequest).caller?.fhirUser), patients: ids };
      const page = list === 'worklist' ? await lists.worklist(parsed) : await lists.toDo(parsed);
      answer = {
        ...taskListAnswer(`${list}/view`, query, req, page),
        patientsMatched: ids.length,
        // More patients match than are read: the page asks for more of the name.
        morePatients: more,
      };
    } else {
      answer = await this.list(list, rest, req);
    }
    return {
      ...answer,
      items: await this.enricher.enrich(answer.items, new Date(), { for: list === 'to-do' ? 'to-do' : 'approval' }),
      next: answer.next?.replace(`/${list}?`, `/${list}/view?`),
    };
  }

  /**
   * The ids of the patients a name matches (FHIR `Patient?name=`), up to MAX_NAME_MATCHES, and whether more match;
   * with the records each links (a merge: the plans stay under the record merged away, whose name may be the old
   * one; since session 49, before a search by the name kept found none of them), at any step (a record merged twice:
   * one search a step, only for matches that link others; since session 50).
   */
  private async patientsNamed(name: string): Promise<{ ids: string[]; more: boolean }> {
    const ids: string[] = [];
    const linked = new Set<string>();
    const withLinked = async (more: boolean) => {
      const walked = linked.size
        ? (
            await recordsLinkedFrom(
              this.fhir,
              ids.map((id) => `Patient/${id}`),
              [...linked],
            )
          ).linked
        : [];
      return { ids: [...new Set([...ids, ...walked.map((r) => r.slice('Patient/'.length))])], more };
    };
    for await (const page of this.fhir.searchPages<Patient>('Patient', { name, _count: NAME_MATCHES_PER_PAGE })) {
      const matched = matchesOf<Patient>(page).filter((p) => p.id);
      const room = MAX_NAME_MATCHES - ids.length;
      for (const patient of matched.slice(0, room)) {
        ids.push(patient.id!);
        for (const record of linkedPatientRecords(patient)) linked.add(record);
      }
      // A common name ("ann") can match thousands: past the most shown, stop reading them.
      if (matched.length > room) return withLinked(true);
      if (ids.length === MAX_NAME_MATCHES) return withLinked(hasMorePages(page));
    }
    return withLinked(false);
  }

  @FhirScopes({ resourceType: 'Patient', interaction: 'r' }, { resourceType: 'Task', interaction: 's' })
  @Get('patients/:id/timeline')
  @AuditsPatientAccess(timelineAccess)
  @ApiOperation({ summary: "A patient's CarePlan timeline: infusions, follow-ups, decisions and who made them" })
  async timeline(@Param('id') id: string) {
    if (!/^[A-Za-z0-9\-.]{1,64}$/.test(id)) throw badRequest('id must be a Patient id');
    // 404 when the FHIR server has no such Patient (read with the rest of the timeline's first round).
    return this.timelines.timeline(id);
  }

  /** GET /worklist or GET /to-do itself (its query, paging and `next` link), whatever its internals. */
  private async list(list: TaskListPath, query: Record<string, unknown>, req: Request): Promise<WorklistAnswer> {
    const clean = Object.fromEntries(Object.entries(query).filter(([, v]) => v !== undefined));
    const controller =
      list === 'worklist'
        ? this.moduleRef.get(WorklistController, { strict: false })
        : this.moduleRef.get(ToDoController, { strict: false });
    const answer: unknown = await controller.list(clean, req);
    return answer as WorklistAnswer;
  }
}
