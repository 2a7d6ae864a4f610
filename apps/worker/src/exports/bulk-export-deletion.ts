import { Injectable } from '@nestjs/common';
import { FhirClient } from '@kc/fhir';
import { BulkExports } from '@kc/queue';

/**
 * Deletes an export's files from the FHIR server and then its record: once its retention has passed, or at once when
 * the client cancels it. A run that fails part way is tried again (a Binary already gone is deleted as well).
 */
@Injectable()
export class BulkExportDeletion {
  constructor(
    private readonly fhir: FhirClient,
    private readonly exports: BulkExports,
  ) {}

  async delete(id: string): Promise<number> {
    const exported = await this.exports.get(id);
    if (!exported) return 0;
    const binaries = exported.output.map((file) => file.binary);
    // A few at a time: a large export has hundreds of files, and the FHIR server serves the clinic meanwhile.
    for (let i = 0; i < binaries.length; i += 8)
      await Promise.all(binaries.slice(i, i + 8).map((binary) => this.fhir.delete('Binary', binary)));
    await this.exports.forget(exported);
    return binaries.length;
  }
}
