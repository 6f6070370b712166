/**
 * What the client commands share: the global flags (--bootstrap-server, --json), flag value
 * parsing, and the error type that becomes one line on stderr and exit code 1.
 *
 * Invariant: a command reports a user mistake by throwing UsageError (usage is printed with it)
 * or CliError (just the line); main.ts turns those and every client error into one line, never a
 * stack trace.
 */

export const DEFAULT_BOOTSTRAP = '127.0.0.1:9092';

export interface GlobalFlags {
  bootstrapServer: string;
  json: boolean;
}

/** parseArgs option specs every client command accepts. */
export const GLOBAL_OPTIONS = {
  'bootstrap-server': { type: 'string' },
  /** Short for --bootstrap-server (the spelling `sluice dev cluster` prints). */
  bootstrap: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

export function globalFlags(values: {
  'bootstrap-server'?: string;
  bootstrap?: string;
  json?: boolean;
}): GlobalFlags {
  return {
    bootstrapServer:
      values['bootstrap-server'] ??
      values.bootstrap ??
      (process.env.SLUICE_BOOTSTRAP_SERVER || DEFAULT_BOOTSTRAP),
    json: values.json ?? false,
  };
}

/** A mistake in the command line: printed with the command's usage. */
export class UsageError extends Error {
  readonly code = 'USAGE';
  readonly canRetry = false;
  constructor(
    message: string,
    readonly usage: string,
  ) {
    super(message);
    this.name = 'UsageError';
  }
}

/** A failure to report as one line (exit code 1). */
export class CliError extends Error {
  readonly code: string;
  readonly canRetry = false;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CliError';
    this.code = code;
  }
}

export function parseIntFlag(
  flag: string,
  value: string | undefined,
  usage: string,
  min = 0,
): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^-?\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min) {
    throw new UsageError(`--${flag} expects an integer >= ${min}, got "${value}"`, usage);
  }
  return n;
}

/** "K=V" pairs into a record; a pair without "=" is a usage error. */
export function parseKeyValues(
  flag: string,
  pairs: string[] | undefined,
  usage: string,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of pairs ?? []) {
    const i = kv.indexOf('=');
    if (i <= 0) throw new UsageError(`--${flag} expects KEY=VALUE, got "${kv}"`, usage);
    out[kv.slice(0, i)] = kv.slice(i + 1);
  }
  return out;
}

let stdoutClosed = false;
let stdoutWatched = false;

/** Writes to stdout, waiting when the pipe is full; resolves false once stdout is closed (EPIPE). */
export function writeOut(text: string): Promise<boolean> {
  if (!stdoutWatched) {
    stdoutWatched = true;
    // A reader that went away (`| head`) is a normal way to stop, not a crash.
    process.stdout.on('error', () => {
      stdoutClosed = true;
    });
  }
  return new Promise((resolve) => {
    if (stdoutClosed || process.stdout.destroyed || !process.stdout.writable) {
      resolve(false);
      return;
    }
    const ok = process.stdout.write(text, (err) => {
      if (err) resolve(false);
    });
    if (ok) resolve(true);
    else process.stdout.once('drain', () => resolve(true));
  });
}

/** Rows as aligned columns (two spaces apart; the last column is not padded). */
export function table(rows: string[][]): string {
  const widths: number[] = [];
  for (const r of rows) {
    r.forEach((c, i) => {
      widths[i] = Math.max(widths[i] ?? 0, c.length);
    });
  }
  return rows
    .map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  '))
    .join('\n');
}
