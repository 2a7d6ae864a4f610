import { Inject, Injectable, Logger, Optional, type OnApplicationBootstrap } from '@nestjs/common';
import type { Resource } from '@medplum/fhirtypes';
import { Counter, Registry } from 'prom-client';
import { APP_CONFIG, type AppConfig } from '@kc/config';
import { FhirClient } from '@kc/fhir';
import { ProtocolCatalog, WriteConformance, type ConformanceProblem } from '@kc/protocols';

/** A write that did not conform, as the check kept it: ids and paths, no values. */
export interface NonConformingWrite {
  reference: string;
  problems: ConformanceProblem[];
}

/** The last writes kept for whoever asks (the tests); the log and the counter have them all. */
const KEPT = 100;

/**
 * With FHIR_WRITE_CONFORMANCE on, the resources this service writes (all, or a share at random) are checked, once the
 * FHIR server has taken them, against what fhir-profiles/ says it writes (WriteConformance): a departure is logged (ids
 * and paths, no patient data) and counted (`kc_nonconforming_writes_total`). The write stands: a profile the code has
 * outgrown must not stop a clinic's follow-ups. Off by default: Medplum's validator parses a profile at every
 * validation, ~2.6 ms of CPU a profiled write on this 2-core VM (a base R4 validation: ~0.2 ms). The tests check every
 * write and fail on any departure.
 */
@Injectable()
export class WriteConformanceCheck implements OnApplicationBootstrap {
  private readonly logger = new Logger(WriteConformanceCheck.name);
  private readonly counter?: Counter<'resource_type'>;
  readonly found: NonConformingWrite[] = [];

  constructor(
    private readonly fhir: FhirClient,
    private readonly catalog: ProtocolCatalog,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Optional() registry?: Registry,
  ) {
    if (config.fhirWriteConformance && registry)
      this.counter = new Counter({
        name: 'kc_nonconforming_writes_total',
        help: "Resources this service wrote that depart from fhir-profiles/ (FHIR_WRITE_CONFORMANCE on); see the log's 'does not conform' lines",
        labelNames: ['resource_type'],
        registers: [registry],
      });
  }

  onApplicationBootstrap(): void {
    const share = this.config.fhirWriteConformance;
    if (!share) return;
    const conformance = new WriteConformance(this.catalog);
    this.fhir.onWrite((written) => {
      for (const resource of written) if (share >= 1 || Math.random() < share) this.check(conformance, resource);
      return Promise.resolve();
    });
  }

  private check(conformance: WriteConformance, resource: Resource): void {
    const problems = conformance.problemsOf(resource);
    if (!problems.length) return;
    const reference = `${resource.resourceType}/${resource.id}`;
    this.logger.error({ msg: 'a resource this service wrote does not conform to fhir-profiles/', reference, problems });
    this.counter?.inc({ resource_type: resource.resourceType });
    this.found.push({ reference, problems });
    if (this.found.length > KEPT) this.found.shift();
  }
}
