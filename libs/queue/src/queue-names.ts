/** Queue names: one queue per kind of work so each can be scaled, paused and watched on its own. */
export const QUEUES = {
  /** Infusion-completed events -> follow-up Tasks. */
  followups: 'followups',
  /** Score Observations (pain NRS, PEG, PHQ-9) -> booster proposals moved earlier or later. */
  outcomes: 'outcomes',
  /** Patient reminders, each a job delayed until its time. */
  reminders: 'reminders',
  /** Repeatable housekeeping: overdue sweep, polling fallback. */
  maintenance: 'maintenance',
  /** Bulk Data exports (`$export`): one job per export, and one to delete its files when they expire. */
  exports: 'exports',
} as const;
