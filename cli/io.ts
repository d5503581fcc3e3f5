import type { Runtime } from './context.js';
import type { ErrorContext } from './errors.js';

/** Where a command writes, line by line: process streams in main.ts, arrays in tests. */
export interface Output {
  out(line: string): void;
  err(line: string): void;
}

export interface CommandContext {
  io: Output;
  runtime: Runtime;
  /** How this CLI is run, for the commands it prints: `npm run cli --` or `stytch-secret-rotation`. */
  cli: string;
  /** Ids a command learns, so an error it throws can be explained with them. */
  errorContext: ErrorContext;
  /** --json: what the command found and did, printed as one JSON object at the end (with the lines it wrote). */
  record(fields: Record<string, unknown>): void;
}
