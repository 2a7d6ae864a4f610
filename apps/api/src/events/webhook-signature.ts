import { createHmac, timingSafeEqual } from 'node:crypto';

/** Medplum's rest-hook signature: hex HMAC-SHA256 of the exact body bytes with the subscription's secret. */
export function validSignature(rawBody: Buffer, signature: string | undefined, secret: string): boolean {
  if (!signature) return false;
  const expected = createHmac('sha256', secret).update(rawBody).digest('hex');
  return safeEqual(signature.trim().toLowerCase(), expected);
}

export function safeEqual(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}
