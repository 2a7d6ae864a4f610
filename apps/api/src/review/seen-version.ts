import { badRequest, OutcomeException, RESOURCE_ID } from '@kc/common';
import { versionIdFromETag } from '@kc/fhir';

/** The version the clinician decided on: from If-Match (any ETag form) or the body; required. */
export function seenVersion(ifMatch: string | undefined, bodyVersion: string | undefined): string {
  const version = versionIdFromETag(ifMatch) ?? bodyVersion;
  if (!version)
    throw new OutcomeException(
      428,
      'required',
      'Send the version you reviewed: an If-Match header or versionId in the body',
    );
  if (!RESOURCE_ID.test(version)) throw badRequest('Malformed version');
  return version;
}

export function checkId(id: string): string {
  if (!RESOURCE_ID.test(id)) throw badRequest('Malformed resource id');
  return id;
}
