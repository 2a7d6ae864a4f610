import type { LoggerService } from '@nestjs/common';

const LEVELS = ['verbose', 'debug', 'log', 'warn', 'error', 'fatal'] as const;
type Level = (typeof LEVELS)[number];
const NAMES: Record<string, Level> = {
  trace: 'verbose',
  verbose: 'verbose',
  debug: 'debug',
  info: 'log',
  log: 'log',
  warn: 'warn',
  error: 'error',
  fatal: 'fatal',
};

/**
 * One JSON object per line, for log shippers. Callers log ids and counts, never resource bodies:
 * that rule, not this class, is what keeps patient data out of the logs.
 */
export class JsonLogger implements LoggerService {
  private readonly minimum: number;

  constructor(
    level = 'info',
    private readonly out: NodeJS.WritableStream = process.stdout,
  ) {
    this.minimum = LEVELS.indexOf(NAMES[level] ?? 'log');
  }

  log(message: unknown, ...rest: unknown[]) {
    this.write('log', message, rest);
  }
  error(message: unknown, ...rest: unknown[]) {
    this.write('error', message, rest);
  }
  warn(message: unknown, ...rest: unknown[]) {
    this.write('warn', message, rest);
  }
  debug(message: unknown, ...rest: unknown[]) {
    this.write('debug', message, rest);
  }
  verbose(message: unknown, ...rest: unknown[]) {
    this.write('verbose', message, rest);
  }
  fatal(message: unknown, ...rest: unknown[]) {
    this.write('fatal', message, rest);
  }

  private write(level: Level, message: unknown, rest: unknown[]): void {
    if (LEVELS.indexOf(level) < this.minimum) return;
    // Nest passes the context as the last string argument.
    const context = typeof rest[rest.length - 1] === 'string' ? (rest.pop() as string) : undefined;
    const entry: Record<string, unknown> = {
      time: new Date().toISOString(),
      level: level === 'log' ? 'info' : level,
      context,
    };
    if (message && typeof message === 'object') Object.assign(entry, message);
    else entry.msg = String(message);
    this.out.write(JSON.stringify(entry) + '\n');
  }
}
