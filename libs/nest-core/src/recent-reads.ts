/**
 * Answers read from the FHIR server, each kept for a while by key (a sweep over many plans of one EHR protocol reads
 * it once), the oldest dropped past a bound. A failed read is not kept: the next asker reads again.
 */
export class RecentReads<T> {
  private readonly kept = new Map<string, { at: number; answer: Promise<T> }>();

  constructor(
    private readonly keepMs: number,
    private readonly most: number,
  ) {}

  get(key: string, read: () => Promise<T>, now = Date.now()): Promise<T> {
    const hit = this.kept.get(key);
    if (hit && now - hit.at < this.keepMs) return hit.answer;
    const answer = read();
    if (this.kept.size >= this.most) this.kept.delete(this.kept.keys().next().value!);
    this.kept.set(key, { at: now, answer });
    answer.catch(() => {
      if (this.kept.get(key)?.answer === answer) this.kept.delete(key);
    });
    return answer;
  }

  delete(key: string): void {
    this.kept.delete(key);
  }

  /** Every answer kept (kept past its time too: what this process has read), latest first; failed reads left out. */
  async answers(): Promise<T[]> {
    const settled = await Promise.allSettled([...this.kept.values()].reverse().map((k) => k.answer));
    return settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  }
}
