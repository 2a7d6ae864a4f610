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
  const executablePath = await Chromium.executablePath();
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
  const packageDir = path.dirname(path.dirname(path.dirname(require.resolve('@sparticuz/chromium'))));
  const version = (JSON.parse(fs.readFileSync(path.join(packageDir, 'package.json'), 'utf8')) as { version: string })
    .version;
  const target = path.join(os.tmpdir(), `kc-chromium-${version}`);
  const libDir = path.join(target, 'lib');
  if (fs.existsSync(path.join(libDir, 'libnss3.so'))) return libDir;
  const tarball = zlib.brotliDecompressSync(fs.readFileSync(path.join(packageDir, 'bin', 'al2023.tar.br')));
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
