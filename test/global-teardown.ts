import { PRIVATE_REDIS_PID } from './global-setup';

/** Stops the private redis-server global-setup.ts started (by its pid), if it started one. */
export default async function globalTeardown(): Promise<void> {
  const pid = Number(process.env[PRIVATE_REDIS_PID]);
  if (!pid) return;
  delete process.env[PRIVATE_REDIS_PID];
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return; // already gone
  }
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline && alive(pid)) await new Promise((resolve) => setTimeout(resolve, 50));
  if (alive(pid)) process.kill(pid, 'SIGKILL');
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
