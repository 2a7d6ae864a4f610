import type { PlanDefinition } from '@medplum/fhirtypes';

/** How often the list is checked for changes (a search for what changed since the newest kept: usually nothing). */
const CHECK_EVERY_MS = 30_000;
/** How often it is read whole (deletions a server did not notify leave it then). */
const READ_WHOLE_EVERY_MS = 15 * 60_000;

/**
 * Every PlanDefinition on the FHIR server (the score poll watches their outcome codes), kept and brought up to date
 * every 30 s by those changed since the newest kept (`_lastUpdated=ge…`), read whole every 15 min and after clear()
 * (a PlanDefinition notified changed or deleted). Before session 38 the whole list was read every 30 s: on a server
 * holding many (other applications' protocols and forms), every page of it. A deletion no one notified stays listed
 * until the next whole read (its codes polled meanwhile: harmless).
 */
export class ServerPlanList {
  private readonly byId = new Map<string, PlanDefinition>();
  private newest?: string;
  private readWholeAt = -Infinity;
  private checkedAt = -Infinity;
  private reading?: Promise<PlanDefinition[]>;

  /** `read(since)`: every PlanDefinition, or those updated at or after `since`, oldest first. */
  constructor(private readonly read: (since?: string) => Promise<PlanDefinition[]>) {}

  get(now = Date.now()): Promise<PlanDefinition[]> {
    if (this.reading) return this.reading;
    if (now - this.checkedAt < CHECK_EVERY_MS) return Promise.resolve([...this.byId.values()]);
    const whole = now - this.readWholeAt >= READ_WHOLE_EVERY_MS || this.newest === undefined;
    this.reading = this.refresh(whole, now).finally(() => (this.reading = undefined));
    return this.reading;
  }

  /** Read whole next time. */
  clear(): void {
    this.readWholeAt = -Infinity;
    this.checkedAt = -Infinity;
  }

  private async refresh(whole: boolean, now: number): Promise<PlanDefinition[]> {
    const read = await this.read(whole ? undefined : this.newest);
    if (whole) this.byId.clear();
    for (const plan of read) {
      if (plan.id) this.byId.set(plan.id, plan);
      const at = plan.meta?.lastUpdated;
      if (at && (!this.newest || at > this.newest)) this.newest = at;
    }
    if (whole) this.readWholeAt = now;
    this.checkedAt = now;
    return [...this.byId.values()];
  }
}
