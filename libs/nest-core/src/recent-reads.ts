/**
 * Answers read from the FHIR server, each kept for a while by key (a sweep over many plans of one EHR protocol reads
 * it once), the oldest dropped past a bound. A failed read is not kept: the next asker reads again.
 */
export class RecentReads<T> {
  private readonly kept = new Map<string, { at: number; answer: Promise<T>; read?: { value: T } }>();

  constructor(
    private readonly keepMs: number,
    private readonly most: number,
  ) {}

  get(key: string, read: () => Promise<T>, now = Date.now()): Promise<T> {
    const hit = this.kept.get(key);
    if (hit && now - hit.at < this.keepMs) return hit.answer;
    const entry: { at: number; answer: Promise<T>; read?: { value: T } } = { at: now, answer: read() };
    if (this.kept.size >= this.most) this.kept.delete(this.kept.keys().next().value!);
    this.kept.set(key, entry);
    entry.answer.then(
      (value) => (entry.read = { value }),
      () => {
        if (this.kept.get(key) === entry) this.kept.delete(key);
      },
    );
    return entry.answer;
  }

  delete(key: string): void {
    this.kept.delete(key);
  }

  clear(): void {
    this.kept.clear();
  }

  /**
   * Every answer read and kept (kept past its time too: what this process has read), latest first. A read still under
   * way is left out rather than waited for: a page asking must not wait on a slow server's read made for another.
   */
  answers(): T[] {
    return [...this.kept.values()].reverse().flatMap((k) => (k.read ? [k.read.value] : []));
  }
}
