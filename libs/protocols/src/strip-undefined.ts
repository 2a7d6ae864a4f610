/** The object without its undefined fields, so optional elements that were not set are absent from the resource. */
export function stripUndefined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}
