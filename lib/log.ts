// Structured logs (ARCHITECTURE.md §10): JSON lines through pino, pretty on a terminal. Callers add
// `host`, `module` and `session` with child loggers. Passwords, tokens and message bodies never
// reach the output, whatever the level.
import { pino } from 'pino';

export type Logger = pino.Logger;

export interface LoggerOptions {
  /** pino level: trace, debug, info (default), warn, error, fatal, silent. */
  level?: string;
  /** false forces JSON even on a terminal. Pretty output needs stdout to be a TTY. */
  pretty?: boolean;
  /** Where JSON lines go instead of stdout (tests, files). Never pretty-printed. */
  destination?: pino.DestinationStream;
}

export const REDACTED_PATHS: readonly string[] = ['password', '*.password', 'token', '*.token', 'body', '*.body'];

export function createLogger(opts: LoggerOptions = {}): Logger {
  const options: pino.LoggerOptions = {
    level: opts.level ?? 'info',
    redact: { paths: [...REDACTED_PATHS], censor: '[redacted]' },
  };
  if (opts.destination !== undefined) return pino(options, opts.destination);
  if (wantsPretty(opts.pretty, process.stdout.isTTY === true)) {
    return pino({
      ...options,
      transport: { target: 'pino-pretty', options: { translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' } },
    });
  }
  return pino(options);
}

/** Pretty output only for a person at a terminal, and only when not turned off. */
export function wantsPretty(pretty: boolean | undefined, stdoutIsTTY: boolean): boolean {
  return pretty !== false && stdoutIsTTY;
}

/** A logger that writes nothing: for tests and tools. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
