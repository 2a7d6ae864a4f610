/**
 * `LIMIT` with its value bound per execution. SQLite (3.53, node:sqlite's) re-prepares a statement whose LIMIT is a
 * bare bound parameter every time the parameter is bound, to plan for the value: 3-7 us of parsing and planning per
 * search statement, 7% of the store thread's time in follow-up events. `+?` is the same integer to SQLite, but an
 * expression, which it does not plan for: the statement stays prepared. (`OFFSET ?` does not re-prepare.)
 */
export const BOUND_LIMIT = 'LIMIT +?';
