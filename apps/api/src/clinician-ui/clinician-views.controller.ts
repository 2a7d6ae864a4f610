import { Controller, Get, Param, Query, Req } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { ApiBearerAuth, ApiOperation, ApiQuery, ApiTags } from '@nestjs/swagger';
import type { Request } from 'express';
import type { Patient } from '@medplum/fhirtypes';
import { Roles } from '@kc/auth';
import { badRequest } from '@kc/common';
import { FhirClient, hasMorePages, matchesOf } from '@kc/fhir';
import { ToDoController } from '../review/to-do.controller';
import { WorklistController } from '../review/worklist.controller';
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

/** Patients a name search shows the Tasks of: the first page of matches; more means the name should be refined. */
const MAX_NAME_MATCHES = 20;

/** The task lists the page shows: awaiting approval, and approved but not yet done. */
type TaskListPath = 'worklist' | 'to-do';

/**
 * What the clinician page shows, as JSON: GET /worklist/view is GET /worklist (same parameters, same paging, its
 * `next` link pointing here) with each item decorated by WorklistEnricher, plus `name` (patient name search);
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

  @Get('worklist/view')
  @AuditsPatientAccess(worklistAccess)
  @ApiOperation({ summary: 'The worklist with patient name and age, protocol and phase, contraindications, scores' })
  @ApiQuery({ name: 'name', required: false, description: 'patient name search (FHIR Patient?name=)' })
  view(@Query() query: Record<string, unknown>, @Req() req: Request) {
    return this.listView('worklist', query, req);
  }

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
      // One page of matches: a common name ("ann") can match thousands of patients, every page of which searchAll
      // would read (and past its page limit, fail) only for the first 20 to be shown.
      const found = await this.fhir.search<Patient>('Patient', { name: name.trim(), _count: MAX_NAME_MATCHES });
      const patients = matchesOf<Patient>(found).slice(0, MAX_NAME_MATCHES);
      const lists = [];
      // One worklist read per matching patient (their first page each); paging by name is not offered.
      for (const p of patients)
        lists.push(await this.list(list, { ...rest, patient: p.id!, count: '100', page: undefined }, req));
      const items = lists.flatMap((l) => l.items).sort(byDue);
      answer = {
        total: items.length,
        count: items.length,
        items,
        next: undefined,
        patientsMatched: patients.length,
        // More patients match than were searched: the page asks for a longer name.
        morePatients: hasMorePages(found),
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

function byDue(a: WorklistItemLike & { due?: { start?: string } }, b: WorklistItemLike & { due?: { start?: string } }) {
  return Date.parse(a.due?.start ?? '9999') - Date.parse(b.due?.start ?? '9999') || a.id.localeCompare(b.id);
}
