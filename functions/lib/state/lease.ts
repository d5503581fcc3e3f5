import { TransientError } from '../errors.js';
import type { AcquireResult, Binding, ClientRecord, LeaseInfo, LeaseRequest, Retirement, StateTable } from './table.js';

/**
 * One mutator per Stytch client (invariant VI): a step, the retirement sweep
 * or an operator's command takes the client's lease before it reads Stytch's
 * state and decides anything, and gives it back on the way out. A lease that
 * is held makes the caller wait briefly, polling with backoff and jitter
 * within its budget, then fail as transient (Secrets Manager reattempts).
 */

/** The lease outlives its holder's deadline by this much: a request sent just before the deadline may still land at Stytch (VI). */
export const LEASE_MARGIN_MS = 30_000;
const FIRST_POLL_MS = 100;
const MAX_POLL_MS = 1_000;

export interface LeaseClock {
  now: () => number;
  sleep: (ms: number) => Promise<void>;
  random: () => number;
}

export type LeaseEvent =
  | { kind: 'waiting'; lease: LeaseInfo }
  | { kind: 'took-over-expired'; lease: LeaseInfo }
  | { kind: 'bound' };

/** Another invocation holds the client's lease past this caller's patience: transient, never a reason to cancel. */
export class LeaseBusyError extends TransientError {
  constructor(
    message: string,
    readonly lease: LeaseInfo,
  ) {
    super(message);
    this.name = 'LeaseBusyError';
  }
}

export interface TakeLeaseOptions {
  /** Epoch ms after which a held lease is not waited for any more (0: do not wait at all). */
  waitUntil: number;
  clock: LeaseClock;
  onEvent?: (event: LeaseEvent) => void;
}

/** A lease this caller holds; give it back exactly once. */
export class HeldLease {
  private released = false;

  constructor(
    private readonly table: StateTable,
    readonly binding: Binding,
    readonly holder: string,
    readonly until: number,
    /** The client's record just before the lease was taken: fresh, read under no one else's lease. */
    readonly previous: ClientRecord | undefined,
    /** Someone else held the lease while this caller asked for it (it waited, or took over an expired one). */
    readonly contended: boolean,
  ) {}

  /**
   * Gives the lease back; `retirement` sets (a Retirement) or clears (null)
   * the due retirement in the same write. False: the lease had expired and
   * been taken over, so nothing was written.
   */
  async release(retirement?: Retirement | null): Promise<boolean> {
    if (this.released) return true;
    this.released = true;
    return await this.table.release(this.binding, this.holder, retirement);
  }
}

export async function takeLease(table: StateTable, request: Omit<LeaseRequest, 'now'>, options: TakeLeaseOptions): Promise<HeldLease> {
  const { clock } = options;
  let poll = FIRST_POLL_MS;
  let reported = false;
  for (;;) {
    let result: AcquireResult;
    try {
      result = await table.acquire({ ...request, now: clock.now() });
    } catch (error) {
      // The write may have taken effect with its answer lost: give back what may be ours (a no-op
      // if it is not), so a reattempt does not wait for it to expire. Best effort.
      await table.release(request.binding, request.holder).catch(() => undefined);
      throw error;
    }
    if (result.kind === 'acquired') {
      if (result.tookOverExpired) options.onEvent?.({ kind: 'took-over-expired', lease: result.tookOverExpired });
      if (result.bound) options.onEvent?.({ kind: 'bound' });
      return new HeldLease(table, request.binding, request.holder, request.until, result.previous, reported || result.tookOverExpired !== undefined);
    }
    if (!reported) {
      reported = true;
      options.onEvent?.({ kind: 'waiting', lease: result.lease });
    }
    const delay = poll / 2 + (poll / 2) * clock.random();
    if (clock.now() + delay > options.waitUntil) {
      throw new LeaseBusyError(
        `Another invocation holds the lease on Stytch client ${request.binding.clientId} (${result.lease.what || 'unknown work'}, until ${new Date(result.lease.until).toISOString()}): ` +
          'only one may change a client at a time. This attempt changed nothing; Secrets Manager reattempts it.',
        result.lease,
      );
    }
    await clock.sleep(delay);
    poll = Math.min(MAX_POLL_MS, poll * 2);
  }
}
