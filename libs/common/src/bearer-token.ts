/**
 * The token of an `Authorization: Bearer <token>` header, trimmed; undefined when the header is missing, uses
 * another scheme or carries no token.
 */
export function bearerToken(header: string | undefined): string | undefined {
  if (!header?.startsWith('Bearer ')) return undefined;
  return header.slice(7).trim() || undefined;
}
