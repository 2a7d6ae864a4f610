import { Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { FhirClient, FhirHttpError } from '@kc/fhir';
import { ProtocolCatalog, type CanonicalResource } from '@kc/protocols';

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
      await this.publish(resource);
      done++;
      this.logger.log({
        msg: 'published profile',
        progress: `${done}/${resources.length}`,
        resource: `${resource.resourceType}/${resource.id}`,
      });
    }
    return done;
  }

  /**
   * Keeps the id from fhir-profiles/ (PUT /Type/id, update-as-create) so EHRs find PlanDefinition/<id> as the
   * catalog names it. A server that already holds this url|version under another id keeps that one (updated in
   * place); a server that refuses client-assigned ids gets a conditional update by url + version instead.
   */
  private async publish(resource: CanonicalResource): Promise<void> {
    const type = resource.resourceType as 'PlanDefinition';
    // Exactly this url (the embedded store answers `url` as a substring, as Medplum's matcher does).
    const existing = (
      await this.fhir.searchAll<CanonicalResource>(type, { url: resource.url!, version: resource.version ?? '' })
    ).find((r) => r.url === resource.url && (r.version ?? '') === (resource.version ?? ''));
    if (existing?.id && existing.id !== resource.id) {
      await this.fhir.update({ ...resource, id: existing.id });
      return;
    }
    try {
      await this.fhir.update(resource);
    } catch (err) {
      if (!(err instanceof FhirHttpError) || err.status >= 500) throw err;

      const { id: _ignored, ...body } = resource;
      await this.fhir.upsert(body, { url: resource.url, version: resource.version });
    }
  }
}
