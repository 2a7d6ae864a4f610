import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import Chromium from '@sparticuz/chromium';

export interface ChromiumBinary {
  executablePath: string;
  /** where it came from, for error messages */
  source: 'CHROMIUM_PATH' | 'Debian chromium' | '@sparticuz/chromium';
  /** environment for the browser process (the npm package's binary needs its shared libraries on the path) */
  env?: Record<string, string | undefined>;
}

const DEBIAN_CHROMIUM = '/usr/bin/chromium';

/**
 * The browser for the UI test: CHROMIUM_PATH when set, else Debian's /usr/bin/chromium when installed, else the
 * headless Chromium that @sparticuz/chromium ships inside its npm package (so a fresh `npm install` is enough).
 */
export async function findChromium(): Promise<ChromiumBinary> {
  const configured = process.env.CHROMIUM_PATH;
  if (configured) {
    if (!fs.existsSync(configured)) throw new Error(`CHROMIUM_PATH=${configured}: no such file`);
    return { executablePath: configured, source: 'CHROMIUM_PATH' };
  }
  if (fs.existsSync(DEBIAN_CHROMIUM)) return { executablePath: DEBIAN_CHROMIUM, source: 'Debian chromium' };
  // Unpacks the brotli-compressed binary (and its fonts and software GL) into the temp dir once.
  const executablePath = await oneProcessAtATime(
    path.join(os.tmpdir(), `kc-chromium-${packageVersion()}.unpacked`),
    () => {
      // No mark: whatever is at the package's path may be half-written (a run killed while unpacking); the package
      // would use it as it is.
      fs.rmSync(path.join(os.tmpdir(), 'chromium'), { force: true });
      return Chromium.executablePath();
    },
  );
  const libraries = unpackSharedLibraries();
  return {
    executablePath,
    source: '@sparticuz/chromium',
    env: { ...process.env, LD_LIBRARY_PATH: [libraries, process.env.LD_LIBRARY_PATH].filter(Boolean).join(':') },
  };
}

/**
 * The package's binary links NSS, NSPR and expat, which a machine without a browser may lack; the package ships
 * them (bin/al2023.tar.br) but unpacks them only on Amazon Linux. Unpack them beside it, once per package version.
 */
function unpackSharedLibraries(): string {
  const target = path.join(os.tmpdir(), `kc-chromium-${packageVersion()}`);
  const libDir = path.join(target, 'lib');
  if (fs.existsSync(path.join(libDir, 'libnss3.so'))) return libDir;
  const tarball = zlib.brotliDecompressSync(fs.readFileSync(path.join(PACKAGE_DIR, 'bin', 'al2023.tar.br')));
  const staging = fs.mkdtempSync(path.join(os.tmpdir(), 'kc-chromium-'));
  const tar = spawnSync('tar', ['-x', '-C', staging], { input: tarball });
  if (tar.status !== 0) throw new Error(`unpacking Chromium's libraries failed: ${tar.stderr.toString()}`);
  // Atomic for concurrent test runs: whoever renames first wins, the others use its copy.
  try {
    fs.renameSync(staging, target);
  } catch {
    fs.rmSync(staging, { recursive: true, force: true });
  }
  return libDir;
}

const PACKAGE_DIR = path.dirname(path.dirname(path.dirname(require.resolve('@sparticuz/chromium'))));

function packageVersion(): string {
  return (JSON.parse(fs.readFileSync(path.join(PACKAGE_DIR, 'package.json'), 'utf8')) as { version: string }).version;
}

/**
 * Runs `unpack` once across the jest workers (the UI suites run in parallel processes): the package checks only that
 * its binary's path exists, so a second process launched it while the first was still writing it (spawn ETXTBSY).
 * The first takes a lock file, unpacks, and leaves a mark holding the result; the others wait for the mark. A lock
 * whose process is gone (killed mid-unpack) is taken over.
 */
async function oneProcessAtATime(mark: string, unpack: () => Promise<string>): Promise<string> {
  const lock = `${mark}.lock`;
  for (;;) {
    if (fs.existsSync(mark)) return fs.readFileSync(mark, 'utf8');
    let fd: number | undefined;
    try {
      fd = fs.openSync(lock, 'wx');
    } catch {
      // Empty for a moment after it is taken; gone once released.
      const holder = Number(readIfThere(lock));
      if (holder && !isRunning(holder)) fs.rmSync(lock, { force: true });
      await new Promise((resolve) => setTimeout(resolve, 100));
      continue;
    }
    try {
      fs.writeSync(fd, String(process.pid));
      const result = await unpack();
      fs.writeFileSync(`${mark}.${process.pid}`, result);
      fs.renameSync(`${mark}.${process.pid}`, mark);
      return result;
    } finally {
      fs.closeSync(fd);
      fs.rmSync(lock, { force: true });
    }
  }
}

function readIfThere(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
