/**
 * Servers differ in how they send ETags: Medplum and HAPI send weak W/"3", some proxies strip to "3",
 * a few send a bare 3. All of them mean versionId 3.
 */
export function versionIdFromETag(etag: string | null | undefined): string | undefined {
  if (!etag) return undefined;
  const match = /^(?:W\/)?"?([^"]+)"?$/.exec(etag.trim());
  return match ? match[1] : undefined;
}

/**
 * The If-Match value every server accepts: the weak form the spec shows. Given an ETag already, the same ETag: a
 * versionId wrapped twice would never match and every such write would fail as a conflict.
 */
export function ifMatchFor(versionIdOrETag: string): string {
  return `W/"${versionIdFromETag(versionIdOrETag) ?? versionIdOrETag}"`;
}
