import { Injectable } from '@nestjs/common';
import { Counter, Registry } from 'prom-client';

/**
 * Bulk export kick-offs by what came of them: an operator alerts on data being taken out in bulk (who: the access
 * audit and /operations/bulk-exports).
 */
@Injectable()
export class ExportRequestMetrics {
  readonly requests: Counter<'level' | 'result'>;

  constructor(registry: Registry) {
    this.requests = new Counter({
      name: 'kc_bulk_export_requests_total',
      help: 'Bulk Data export kick-offs by level (system, patient, group) and result (accepted, refused: 4xx for what was asked or who asked, throttled: past BULK_EXPORT_PER_CLIENT)',
      labelNames: ['level', 'result'],
      registers: [registry],
    });
  }
}
