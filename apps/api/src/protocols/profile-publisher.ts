import { Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { FhirClient } from '@kc/fhir';
import { ProtocolCatalog } from '@kc/protocols';

/**
 * Publishes fhir-profiles/ to the connected FHIR server at startup, upserting by canonical url + version,
 * so the server holds the exact PlanDefinitions the CarePlans' instantiatesCanonical point at.
 */
@Injectable()
export class ProfilePublisher implements OnApplicationBootstrap {
  private readonly logger = new Logger(ProfilePublisher.name);

  constructor(
    private readonly catalog: ProtocolCatalog,
    private readonly fhir: FhirClient,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    await this.publishAll();
  }

  async publishAll(): Promise<number> {
    const resources = this.catalog.resources.filter((r) => r.url);
    let done = 0;
    for (const resource of resources) {
      // Conditional update: creates on first start, replaces the same url|version afterwards. The id is
      // left out because servers assign their own on create and refuse a body id that differs from the match.
      const { id: _ignored, ...body } = resource;
      await this.fhir.upsert(body, { url: resource.url, version: resource.version });
      done++;
      this.logger.log({
        msg: 'published profile',
        progress: `${done}/${resources.length}`,
        resource: `${resource.resourceType}/${resource.id}`,
      });
    }
    return done;
  }
}
