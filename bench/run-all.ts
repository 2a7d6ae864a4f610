import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * Runs every benchmark in its own process, one after another, so none disturbs another's numbers.
 * `npm run bench` builds first; `npm run bench -- apply` runs only the ones whose name contains "apply".
 */
const filter = process.argv[2];
const benches = fs
  .readdirSync(__dirname)
  // bench-*.js are the shared helpers, not benchmarks.
  .filter((f) => f.endsWith('.js') && f !== path.basename(__filename) && !f.startsWith('bench-'))
  .filter((f) => !filter || f.includes(filter))
  .sort();
let failed = 0;
for (const file of benches) {
  process.stdout.write(`\n=== ${file}\n`);
  // --expose-gc: a bench may collect garbage before it reads memory, so the figure does not depend on GC timing.
  const result = spawnSync(process.execPath, ['--expose-gc', path.join(__dirname, file)], { stdio: 'inherit' });
  if (result.status !== 0) failed++;
}
process.exit(failed ? 1 : 0);
