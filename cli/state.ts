import { LEASE_MARGIN_MS, LeaseBusyError, takeLease, type HeldLease } from '../functions/lib/state/lease.js';
import { BindingError, type Binding, type Retirement, type StateTable } from '../functions/lib/state/table.js';
import { CliError, explainError, networkErrorCode } from './errors.js';
import type { Output } from './io.js';

/**
 * The CLI's side of the function's state table: errors an operator can act
 * on, and the client's lease that every change to Stytch is made under
 * (invariant VI), taken the way the function's steps take it.
 */

export const NO_STATE_TABLE =
  "Name the function's state table with --state-table NAME or ROTATION_STATE_TABLE (the deployment's table; the local stack sets the variable).";

/** How long a command waits for a lease the function (or another operator) holds. */
export const LEASE_WAIT_MS = 10_000;

const ACCESS_ERRORS = new Set(['AccessDeniedException', 'UnrecognizedClientException', 'InvalidSignatureException', 'ExpiredTokenException']);

/**
 * The state table's configuration and access errors, for an operator: they
 * name the table and what to check. Conditional-check failures and everything
 * else pass through unchanged: StateTable decides on them.
 */
export function explainTableError(error: unknown, tableName: string): unknown {
  if (!(error instanceof Error)) return error;
  if (error.name === 'ResourceNotFoundException') {
    return new CliError(
      `The state table ${tableName} does not exist in this account and region. ${NO_STATE_TABLE} Check --region and --profile too.`,
      { cause: error },
    );
  }
  if (ACCESS_ERRORS.has(error.name)) {
    return new CliError(
      `AWS refused access to the state table ${tableName} (${error.name}: ${error.message.trim()}). status needs dynamodb:GetItem on it; recover, retire and bind also need PutItem, UpdateItem and DeleteItem.`,
      { cause: error },
    );
  }
  const code = networkErrorCode(error);
  if (code) {
    return new CliError(
      `DynamoDB could not be reached for the state table ${tableName} (${code}). Check --endpoint-url, AWS_ENDPOINT_URL_DYNAMODB and AWS_ENDPOINT_URL (for the local stack, is it running?), and your network.`,
      { cause: error },
    );
  }
  return error;
}

const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

/**
 * Takes the lease on `binding`'s client for one command (VI): `bind: false`,
 * so the CLI never creates a binding, and `until` covers the command's Stytch
 * budget plus the margin for a request still in flight. A held lease is
 * waited for up to LEASE_WAIT_MS, then the command stops, naming the holder.
 * A binding that disagrees (VII) stops it too.
 */
export interface ClientLeaseOptions {
  holder: string;
  what: string;
  /** How long the holder may spend on Stytch calls: the lease lasts that plus LEASE_MARGIN_MS. */
  budgetMs: number;
  /** The command, for messages. */
  command: string;
  io: Output;
  clock: { now: () => number; sleep: (ms: number) => Promise<void>; random: () => number };
}

/** What a piece of work under a lease hands back, and what the lease's release writes: a Retirement, null to clear it, undefined to leave it. */
export interface LeasedResult<T> {
  result: T;
  retirement?: Retirement | null | undefined;
}

/**
 * Runs `work` holding the lease on `binding`'s client, and gives the lease
 * back whatever happens (leaving the retirement record alone on failure). A
 * failed give-back is reported, never fatal: the lease expires on its own.
 */
export async function underClientLease<T>(
  table: StateTable,
  binding: Binding,
  options: ClientLeaseOptions,
  work: (lease: HeldLease) => Promise<LeasedResult<T>>,
): Promise<T> {
  const lease = await takeClientLease(table, binding, options);
  let retirement: Retirement | null | undefined;
  try {
    const done = await work(lease);
    retirement = done.retirement;
    return done.result;
  } finally {
    try {
      if (!(await lease.release(retirement))) {
        options.io.err(
          `Warning: the lease on Stytch client ${binding.clientId} had expired and been taken over before ${options.command} gave it back: this command ran past its time; run status.`,
        );
      }
    } catch (error) {
      options.io.err(`Warning: could not give back the lease on Stytch client ${binding.clientId}; it expires on its own at ${iso(lease.until)} (${explainError(error)}).`);
    }
  }
}

export async function takeClientLease(table: StateTable, binding: Binding, options: ClientLeaseOptions): Promise<HeldLease> {
  const { clock, io } = options;
  const start = clock.now();
  try {
    return await takeLease(
      table,
      { binding, bind: false, holder: options.holder, what: options.what, until: start + options.budgetMs + LEASE_MARGIN_MS },
      {
        waitUntil: start + LEASE_WAIT_MS,
        clock,
        onEvent: (event) => {
          if (event.kind === 'waiting') {
            io.err(
              `Waiting up to ${LEASE_WAIT_MS / 1000} s for the lease on Stytch client ${binding.clientId}: ${event.lease.holder} holds it (${event.lease.what || 'unknown work'}) until ${iso(event.lease.until)}.`,
            );
          } else if (event.kind === 'took-over-expired') {
            io.err(`Took over an expired lease on Stytch client ${binding.clientId} (${event.lease.holder}, ${event.lease.what || 'unknown work'}): its holder ended without giving it back.`);
          }
        },
      },
    );
  } catch (error) {
    if (error instanceof LeaseBusyError) {
      throw new CliError(
        `${options.command} changed nothing: the lease on Stytch client ${binding.clientId} is still held after ${LEASE_WAIT_MS / 1000} s, by ${error.lease.holder} ` +
          `(${error.lease.what || 'unknown work'}) until ${iso(error.lease.until)}. Only one change at a time is made to a client: the function's rotation steps, its retirement sweep and this CLI take turns. ` +
          'Run the command again once that work is done (status shows the lease); a lease whose holder died expires at the time shown.',
        { cause: error },
      );
    }
    if (error instanceof BindingError) throw new CliError(`${options.command} changed nothing. ${error.message}`, { cause: error });
    throw error;
  }
}
