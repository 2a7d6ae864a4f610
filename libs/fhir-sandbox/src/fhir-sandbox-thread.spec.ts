import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/**
 * The embedded server's thread (startFhirSandboxThread), run in a child process of its own: a thread that dies while
 * the service runs takes the process down, saying why; a thread closed on purpose does not. The thread's script is a
 * stand-in that behaves as the real one does at its edges (it says it listens; it dies, or it answers a close).
 */
const THREAD_MODULE = path.join(__dirname, 'fhir-sandbox-thread.ts');
const TS_REGISTER = path.join(__dirname, '../../../test/support/ts-register.cjs');

let dir: string;
beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kc-sandbox-thread-'))));
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Starts the thread with `threadScript` in a child process that then runs `afterStart`; its output and exit code. */
async function runWithThread(
  threadScript: string,
  afterStart: string,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const entry = path.join(dir, 'sandbox-thread.js');
  fs.writeFileSync(entry, threadScript);
  const main = [
    `const { startFhirSandboxThread } = require(${JSON.stringify(THREAD_MODULE)});`,
    `startFhirSandboxThread({}, ${JSON.stringify(entry)}).then(async (sandbox) => {`,
    `  console.log('listening at ' + sandbox.baseUrl);`,
    `  ${afterStart}`,
    '});',
  ].join('\n');
  const child = spawn(process.execPath, ['-r', TS_REGISTER, '-e', main], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    // 'close', not 'exit': 'exit' can come before the child's output was all read.
    child.once('close', (exitCode) => {
      clearTimeout(timer);
      resolve(exitCode);
    });
  });
  return { code, stdout, stderr };
}

const SAYS_LISTENING = `
const { parentPort } = require('node:worker_threads');
parentPort.postMessage({ type: 'listening', baseUrl: 'http://127.0.0.1:9/fhir/R4' });
`;

it('a thread that dies while the service runs takes the process down, saying why', async () => {
  const { code, stdout, stderr } = await runWithThread(
    `${SAYS_LISTENING}\nsetTimeout(() => process.exit(3), 300);`,
    // The service goes on (a timer keeps it alive) until the thread's death stops it.
    'setInterval(() => {}, 1000);',
  );
  expect(stdout).toContain('listening at http://127.0.0.1:9/fhir/R4');
  expect(code).not.toBe(0);
  expect(stderr).toContain("the embedded FHIR server's thread stopped (exit code 3)");
}, 20_000);

it('a thread closed on purpose lets the process end normally', async () => {
  const { code, stdout, stderr } = await runWithThread(
    `${SAYS_LISTENING}\nparentPort.on('message', () => parentPort.postMessage({ type: 'closed' }));`,
    "await sandbox.close(); console.log('closed');",
  );
  expect(stdout).toContain('closed');
  expect(stderr).not.toContain('thread stopped');
  expect(code).toBe(0);
}, 20_000);

it("asks the thread for its store's stats and matches each answer to its question (answers out of order)", async () => {
  const { code, stdout } = await runWithThread(
    `${SAYS_LISTENING}
parentPort.on('message', (m) => {
  if (m.type !== 'ask') return parentPort.postMessage({ type: 'closed' });
  const answer = () =>
    parentPort.postMessage({ type: 'answer', id: m.id, value: { databaseBytes: 1000 + m.id, walBytes: 0, groupCommits: 0, indexedParameters: 0 } });
  setTimeout(answer, m.id === 0 ? 100 : 0);
});`,
    [
      'const [first, second] = await Promise.all([sandbox.storageStats(), sandbox.storageStats()]);',
      "console.log('stats ' + first.databaseBytes + ' ' + second.databaseBytes);",
      'await sandbox.close();',
    ].join('\n'),
  );
  expect(stdout).toContain('stats 1000 1001');
  expect(code).toBe(0);
}, 20_000);
