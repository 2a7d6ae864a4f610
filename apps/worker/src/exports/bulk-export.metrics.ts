import { Injectable } from '@nestjs/common';
import { Counter, Registry } from 'prom-client';

/** What operators watch about bulk exports (the API counts kick-offs; the worker what it wrote). */
@Injectable()
export class BulkExportMetrics {
  readonly finished: Counter<'result'>;
  readonly resources: Counter<'type'>;

  constructor(registry: Registry) {
    this.finished = new Counter({
      name: 'kc_bulk_exports_finished_total',
      help: 'Bulk exports finished by the worker, by result (completed, failed: its attempts spent)',
      labelNames: ['result'],
      registers: [registry],
    });
    this.resources = new Counter({
      name: 'kc_bulk_export_resources_total',
      help: 'Resources written to bulk export files, by type',
      labelNames: ['type'],
      registers: [registry],
    });
  }
}
