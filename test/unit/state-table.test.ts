/**
 * The state table's decisions (DESIGN.md §4a), one at a time: who holds a
 * client's lease (VI), which binding wins (VII), what a give-back leaves and
 * when a retirement is due (III). The function's own StateTable and takeLease
 * run through the real DynamoDBClient against the local stack's DynamoDB
 * (dynalite, in process: infra/local/dynamodb.ts), with a recording client in
 * between that can answer a call with an error or change the table just before
 * a call, to force the interleavings a concurrent writer would cause.
 *
 * What is asserted is what the function depends on: the items in the table,
 * the result or error (with the message an operator acts on), and the table
 * calls made, because each call is cost (two per step on the happy path) and a
 * skipped or extra conditional write is a decision taken differently.
 */
import {
  type AttributeValue,
  DeleteItemCommand,
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  ScanCommand,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { InvalidInputError, TransientError } from '../../functions/lib/errors.js';
import { HeldLease, type LeaseClock, type LeaseEvent, LeaseBusyError, takeLease } from '../../functions/lib/state/lease.js';
import {
  type Binding,
  BindingError,
  type ClientRecord,
  type DynamoDBSend,
  type LeaseRequest,
  type Retirement,
  StateTable,
} from '../../functions/lib/state/table.js';
import { LocalDynamoDB } from '../../infra/local/dynamodb.js';

type Item = Record<string, AttributeValue>;
type Op = 'GetItem' | 'PutItem' | 'UpdateItem' | 'DeleteItem' | 'Scan';

const T0 = Date.UTC(2030, 0, 1);
const MIN = 60_000;
const PROJECT = 'project-test-11111111-1111-4111-8111-111111111111';
const OTHER_PROJECT = 'project-test-22222222-2222-4222-8222-222222222222';
const arn = (name: string): string => `arn:aws:secretsmanager:us-east-1:123456789012:secret:${name}-AbCdEf`;
const binding = (secret: string, clientId: string, more: Partial<Binding> = {}): Binding => ({
  secretArn: arn(secret),
  projectId: PROJECT,
  clientId,
  credentialsSecretId: undefined,
  kind: 'connected_app',
  ...more,
});
const request = (b: Binding, holder: string, now: number, more: Partial<LeaseRequest> = {}): LeaseRequest => ({
  binding: b,
  bind: true,
  holder,
  what: `createSecret by ${holder}`,
  until: now + 5 * MIN,
  now,
  ...more,
});
const retirement = (dueAt: number, n = 1, more: Partial<Retirement> = {}): Retirement => ({
  dueAt,
  versionId: `00000000-0000-4000-8000-00000000000${n}`,
  last4: `n${n}n${n}`,
  previousVersionId: `00000000-0000-4000-8000-00000000010${n}`,
  previousLast4: `p${n}p${n}`,
  ...more,
});

const S = (value: string): AttributeValue => ({ S: value });
const N = (value: number): AttributeValue => ({ N: String(value) });
const iso = (ms: number): string => new Date(ms).toISOString();
const clientPk = (b: { projectId: string; clientId: string }): string => `client#${b.projectId}#${b.clientId}`;
const secretPk = (b: { secretArn: string }): string => `secret#${b.secretArn}`;

/** The items StateTable writes, spelled out. */
const secretItemOf = (b: Binding, boundAt: number): Item => ({
  pk: S(secretPk(b)),
  kind: S('secret'),
  secret_arn: S(b.secretArn),
  project_id: S(b.projectId),
  client_id: S(b.clientId),
  bound_at: S(iso(boundAt)),
  ...(b.kind === undefined ? {} : { client_kind: S(b.kind) }),
  ...(b.credentialsSecretId === undefined ? {} : { credentials_secret_id: S(b.credentialsSecretId) }),
});
const boundClientItem = (b: Binding, boundAt: number): Item => ({
  pk: S(clientPk(b)),
  secret_arn: S(b.secretArn),
  bound_at: S(iso(boundAt)),
  project_id: S(b.projectId),
  client_id: S(b.clientId),
  client_kind: S(b.kind ?? 'connected_app'),
  ...(b.credentialsSecretId === undefined ? {} : { credentials_secret_id: S(b.credentialsSecretId) }),
});
/** A client an administrator's rebinding set free. */
const unboundClientItem = (b: Binding, at: number): Item => ({ pk: S(clientPk(b)), project_id: S(b.projectId), client_id: S(b.clientId), unbound_at: S(iso(at)) });
/** A secret an administrator's rebinding set free. */
const unboundSecretItem = (b: Binding, at: number): Item => ({ pk: S(secretPk(b)), kind: S('secret'), secret_arn: S(b.secretArn), unbound_at: S(iso(at)) });
const leaseFields = (r: Pick<LeaseRequest, 'holder' | 'until' | 'what'>): Item => ({ lease_holder: S(r.holder), lease_until: N(r.until), lease_what: S(r.what) });
const releasedBy = (holder: string): Item => ({ released_by: S(holder) });
/** A lease-only item (an operator's lease on an unbound client): it expires a day after its lease, by TTL. */
const leaseOnlyItem = (b: Binding, r: LeaseRequest): Item => ({
  pk: S(clientPk(b)),
  project_id: S(b.projectId),
  client_id: S(b.clientId),
  ...leaseFields(r),
  expires_at: N(Math.ceil(r.until / 1000) + 86_400),
});
const retirementFields = (r: Retirement): Item => ({
  retire_due: N(r.dueAt),
  retire_version: S(r.versionId),
  retire_last4: S(r.last4),
  retire_previous_version: S(r.previousVersionId),
  retire_previous_last4: S(r.previousLast4),
  retire_previous_secret_id: S(r.previousSecretId ?? ''),
  retire_moved_at: N(r.movedAt ?? 0),
  retire_deferred: N(r.deferred ? 1 : 0),
});
const record = (b: { projectId: string; clientId: string }, parts: Partial<ClientRecord> = {}): ClientRecord => ({
  ref: { projectId: b.projectId, clientId: b.clientId },
  binding: undefined,
  boundAt: undefined,
  unboundAt: undefined,
  lease: undefined,
  retirement: undefined,
  created: undefined,
  ...parts,
});
const leaseOf = (r: Pick<LeaseRequest, 'holder' | 'until' | 'what'>) => ({ holder: r.holder, until: r.until, what: r.what });

const REBIND_FIX =
  'If the change is intended, an administrator rebinds the secret with the CLI (bind --secret-id <secret> --client-id <client>), which needs write access to the state table.';

/** A first acquire: the lease write finds no item, the read confirms it, then secret side, then client side. */
const FIRST_BIND_CALLS = ['UpdateItem ConditionalCheckFailedException', 'GetItem no item', 'PutItem ok', 'UpdateItem ok'];

/** An error as the SDK throws it once its retries are spent: found by its name. */
const awsError = (name: string): Error => Object.assign(new Error(`${name} (from the test)`), { name });

const COMMANDS = [
  ['GetItem', GetItemCommand],
  ['PutItem', PutItemCommand],
  ['UpdateItem', UpdateItemCommand],
  ['DeleteItem', DeleteItemCommand],
  ['Scan', ScanCommand],
] as const;
const opName = (command: unknown): Op | 'Other' => COMMANDS.find(([, C]) => command instanceof C)?.[0] ?? 'Other';

/**
 * What to do at the nth call (1-based) of an operation: change the table first (`act`, as a concurrent
 * writer would), and/or answer with `error` instead of calling DynamoDB (`before`) or after the call took
 * effect (`after`: the answer was lost).
 */
interface Intercept {
  op: Op;
  nth: number | 'every';
  act?: () => Promise<unknown>;
  error?: Error;
  when?: 'before' | 'after';
}

const dynamo = new LocalDynamoDB();
const sdk = new DynamoDBClient({
  region: 'us-east-1',
  credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
  // One attempt: the recording client shows what the table answered first.
  maxAttempts: 1,
  requestHandler: dynamo.sdkRequestHandler(),
});
let tables = 0;

afterAll(async () => {
  sdk.destroy();
  await dynamo.close();
});

/** A fresh state table, StateTable over a recording client, and raw access to the items. */
class Harness {
  readonly calls: string[] = [];
  readonly inputs: Array<{ op: string; input: Record<string, unknown> }> = [];
  readonly intercepts: Intercept[] = [];
  private readonly counts = new Map<string, number>();
  /** Makes StateTable's scans page after this many items (DynamoDB's Limit). */
  scanLimit: number | undefined;
  readonly table: StateTable;

  private constructor(readonly tableName: string) {
    const send = (async (command: Parameters<DynamoDBSend['send']>[0]) => {
      const op = opName(command);
      const n = (this.counts.get(op) ?? 0) + 1;
      this.counts.set(op, n);
      const input = command.input as Record<string, unknown>;
      if (op === 'Scan' && this.scanLimit !== undefined) input.Limit = this.scanLimit;
      this.inputs.push({ op, input });
      const intercept = this.intercepts.find((i) => i.op === op && (i.nth === 'every' || i.nth === n));
      if (intercept?.act) await intercept.act();
      if (intercept?.error && intercept.when !== 'after') {
        this.calls.push(`${op} ${intercept.error.name}`);
        throw intercept.error;
      }
      try {
        const out = (await sdk.send(command as never)) as { Item?: Item };
        if (intercept?.error) {
          this.calls.push(`${op} ${intercept.error.name}`);
          throw intercept.error;
        }
        this.calls.push(`${op} ${op === 'GetItem' && !out.Item ? 'no item' : 'ok'}`);
        return out;
      } catch (error) {
        if (error !== intercept?.error) this.calls.push(`${op} ${(error as Error).name}`);
        throw error;
      }
    }) as DynamoDBSend['send'];
    this.table = new StateTable({ send }, tableName);
  }

  static async create(): Promise<Harness> {
    const name = `state-unit-${++tables}`;
    await dynamo.createStateTable(name);
    return new Harness(name);
  }

  /** Forgets the calls so far (and their counts for `nth`). */
  reset(): void {
    this.calls.length = 0;
    this.inputs.length = 0;
    this.counts.clear();
    this.intercepts.length = 0;
  }

  on(intercept: Intercept): this {
    this.intercepts.push(intercept);
    return this;
  }

  async put(item: Item): Promise<void> {
    await dynamo.handle('PutItem', { TableName: this.tableName, Item: item });
  }

  async item(pk: string): Promise<Item | undefined> {
    const out = (await dynamo.handle('GetItem', { TableName: this.tableName, Key: { pk: S(pk) }, ConsistentRead: true })) as { Item?: Item };
    return out.Item;
  }

  /** The whole table, by key. */
  async items(): Promise<Record<string, Item>> {
    const all = (await dynamo.scan(this.tableName)) as Item[];
    return Object.fromEntries(all.map((item) => [item.pk!.S!, item]).sort(([a], [b]) => String(a).localeCompare(String(b))));
  }
}

/** A clock that only moves when the code under test sleeps; `onSleep` runs at each sleep (a concurrent holder's act). */
function fakeClock(start: number, random: number, onSleep?: (n: number) => Promise<void>): LeaseClock & { sleeps: number[]; t: number } {
  const clock = {
    t: start,
    sleeps: [] as number[],
    now: () => clock.t,
    sleep: async (ms: number) => {
      clock.sleeps.push(ms);
      clock.t += ms;
      await onSleep?.(clock.sleeps.length);
    },
    random: () => random,
  };
  return clock;
}

async function caught(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('Expected a rejection, got a result.');
}

async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const value of iterable) out.push(value);
  return out;
}

let h: Harness;
beforeEach(async () => {
  h = await Harness.create();
});

const a = binding('a', 'client-x');

describe('takeLease: one mutator per client (VI)', () => {
  const take = (holder: string, more: Partial<LeaseRequest> = {}) => ({ binding: a, bind: true, holder, what: `createSecret by ${holder}`, until: T0 + 5 * MIN, ...more });

  it('takes a free lease at once, uncontended, and reports the first binding', async () => {
    const clock = fakeClock(T0, 0.5);
    const events: LeaseEvent[] = [];
    const lease = await takeLease(h.table, take('h1'), { waitUntil: T0 + MIN, clock, onEvent: (e) => events.push(e) });

    expect(lease).toBeInstanceOf(HeldLease);
    expect({ binding: lease.binding, holder: lease.holder, until: lease.until, previous: lease.previous, contended: lease.contended }).toEqual({
      binding: a,
      holder: 'h1',
      until: T0 + 5 * MIN,
      previous: undefined,
      contended: false,
    });
    expect(events).toEqual([{ kind: 'bound' }]);
    expect(clock.sleeps).toEqual([]);
    expect(h.calls).toEqual(FIRST_BIND_CALLS);
    expect(await h.items()).toEqual({
      [clientPk(a)]: { ...boundClientItem(a, T0), ...leaseFields(take('h1')) },
      [secretPk(a)]: secretItemOf(a, T0),
    });
  });

  it('gives the lease back exactly once: a second release writes nothing, even after another holder took the lease', async () => {
    const lease = await takeLease(h.table, take('h1'), { waitUntil: 0, clock: fakeClock(T0, 0.5) });
    h.reset();

    expect(await lease.release(retirement(T0 + 60 * MIN))).toBe(true);
    expect(h.calls).toEqual(['UpdateItem ok']);
    expect(await h.item(clientPk(a))).toEqual({ ...boundClientItem(a, T0), ...retirementFields(retirement(T0 + 60 * MIN)), ...releasedBy('h1') });

    await h.table.acquire(request(a, 'h2', T0 + MIN));
    h.reset();
    expect(await lease.release(null)).toBe(true);
    expect(h.calls).toEqual([]);
    expect(await h.item(clientPk(a))).toEqual({
      ...boundClientItem(a, T0),
      ...retirementFields(retirement(T0 + 60 * MIN)),
      ...releasedBy('h1'),
      ...leaseFields(request(a, 'h2', T0 + MIN)),
    });
  });

  it('waits with doubling backoff capped at one second, reports the wait once, then takes over the expired lease', async () => {
    const held = request(a, 'h1', T0, { until: T0 + 4_000 });
    await h.table.acquire(held);
    const clock = fakeClock(T0, 1);
    const events: LeaseEvent[] = [];

    const lease = await takeLease(h.table, take('h2'), { waitUntil: T0 + MIN, clock, onEvent: (e) => events.push(e) });

    // random 1: each sleep is the whole backoff (100, 200, 400, 800, then 1000 at most); the lease ends at 4000 ms.
    expect(clock.sleeps).toEqual([100, 200, 400, 800, 1_000, 1_000, 1_000]);
    expect(events).toEqual([
      { kind: 'waiting', lease: leaseOf(held) },
      { kind: 'took-over-expired', lease: leaseOf(held) },
    ]);
    expect(lease.contended).toBe(true);
    expect(lease.previous).toEqual(record(a, { binding: a, boundAt: iso(T0), lease: leaseOf(held) }));
    expect(await h.item(clientPk(a))).toEqual({ ...boundClientItem(a, T0), ...leaseFields(take('h2')) });
  });

  it('sleeps half the backoff plus a random share of the other half (random 0.25)', async () => {
    await h.table.acquire(request(a, 'h1', T0, { until: T0 + 500 }));
    const clock = fakeClock(T0, 0.25);

    await takeLease(h.table, take('h2'), { waitUntil: T0 + MIN, clock });

    // 50 + 12.5, 100 + 25, 200 + 50, 400 + 100: at 937.5 ms the lease (until 500) is over.
    expect(clock.sleeps).toEqual([62.5, 125, 250, 500]);
  });

  it('counts as contended when it waited, even if the holder gave the lease back instead of letting it expire', async () => {
    await h.table.acquire(request(a, 'h1', T0, { until: T0 + 10 * MIN }));
    const events: LeaseEvent[] = [];
    const clock = fakeClock(T0, 0.5, async (n) => {
      if (n === 2) await h.table.release(a, 'h1');
    });

    const lease = await takeLease(h.table, take('h2'), { waitUntil: T0 + MIN, clock, onEvent: (e) => events.push(e) });

    expect(clock.sleeps).toEqual([75, 150]);
    expect(events).toEqual([{ kind: 'waiting', lease: leaseOf(request(a, 'h1', T0, { until: T0 + 10 * MIN })) }]);
    expect(lease.contended).toBe(true);
    expect(lease.previous?.lease).toBeUndefined();
  });

  it('counts as contended when it took over an expired lease without waiting', async () => {
    const expired = request(a, 'h1', T0, { until: T0 - 1 });
    await h.table.acquire(expired);
    const events: LeaseEvent[] = [];

    const lease = await takeLease(h.table, take('h2'), { waitUntil: T0 + MIN, clock: fakeClock(T0, 0.5), onEvent: (e) => events.push(e) });

    expect(events).toEqual([{ kind: 'took-over-expired', lease: leaseOf(expired) }]);
    expect(lease.contended).toBe(true);
  });

  it('reports a takeover and a first binding in one take, in that order, and works without a listener', async () => {
    const op = request(a, 'op', T0 - 2 * MIN, { bind: false, until: T0 + 100, what: 'recover' });
    await h.table.acquire(op);
    const events: LeaseEvent[] = [];
    const listened = await takeLease(h.table, take('h2'), { waitUntil: T0 + MIN, clock: fakeClock(T0 + 101, 0.5), onEvent: (e) => events.push(e) });
    expect(events).toEqual([
      { kind: 'took-over-expired', lease: leaseOf(op) },
      { kind: 'bound' },
    ]);
    expect(listened.contended).toBe(true);

    // The same without onEvent: waiting, taking over and binding report to no one and do not fail.
    const b = binding('b', 'client-y');
    await h.table.acquire(request(b, 'op', T0 - 2 * MIN, { bind: false, until: T0 + 100 }));
    const clock = fakeClock(T0, 1);
    const silent = await takeLease(h.table, { binding: b, bind: true, holder: 'h3', what: 'w', until: T0 + 5 * MIN }, { waitUntil: T0 + MIN, clock });
    expect(clock.sleeps).toEqual([100, 200]);
    expect(silent.contended).toBe(true);
    expect(await h.item(clientPk(b))).toEqual({ ...boundClientItem(b, T0 + 300), ...leaseFields({ holder: 'h3', until: T0 + 5 * MIN, what: 'w' }) });
  });

  it('fails as busy, having changed nothing, when the next look would come after its patience; it still sleeps when it lands exactly on it', async () => {
    const held = request(a, 'h1', T0, { until: T0 + 10 * MIN });
    await h.table.acquire(held);
    const before = await h.items();

    // random 0.25: the first sleep would be 62.5 ms.
    const impatient = fakeClock(T0, 0.25);
    const error = await caught(takeLease(h.table, take('h2'), { waitUntil: T0 + 62, clock: impatient }));
    expect(impatient.sleeps).toEqual([]);
    expect(error).toBeInstanceOf(LeaseBusyError);
    expect(error).toBeInstanceOf(TransientError);
    expect(error.name).toBe('LeaseBusyError');
    expect((error as LeaseBusyError).lease).toEqual(leaseOf(held));
    expect(error.message).toBe(
      `Another invocation holds the lease on Stytch client client-x (createSecret by h1, until ${iso(T0 + 10 * MIN)}): ` +
        'only one may change a client at a time. This attempt changed nothing; Secrets Manager reattempts it.',
    );

    const exact = fakeClock(T0, 0.25);
    await expect(takeLease(h.table, take('h2'), { waitUntil: T0 + 62.5, clock: exact })).rejects.toBeInstanceOf(LeaseBusyError);
    expect(exact.sleeps).toEqual([62.5]);
    expect(await h.items()).toEqual(before);
  });

  it("names 'unknown work' when the holder did not say what it does", async () => {
    // An item whose lease carries no lease_what.
    await h.put({ ...boundClientItem(a, T0), lease_holder: S('h1'), lease_until: N(T0 + MIN) });
    await h.put(secretItemOf(a, T0));

    const error = await caught(takeLease(h.table, take('h2'), { waitUntil: 0, clock: fakeClock(T0, 0.5) }));

    expect(error.message).toBe(
      `Another invocation holds the lease on Stytch client client-x (unknown work, until ${iso(T0 + MIN)}): ` +
        'only one may change a client at a time. This attempt changed nothing; Secrets Manager reattempts it.',
    );
  });

  it('gives back a lease whose write took effect with its answer lost, and rethrows the table error', async () => {
    await h.table.acquire(request(a, 'h1', T0 - 2 * MIN, { until: T0 - MIN }));
    const lost = awsError('InternalServerError');
    h.reset();
    h.on({ op: 'UpdateItem', nth: 1, when: 'after', error: lost });

    const error = await caught(takeLease(h.table, take('h2'), { waitUntil: T0 + MIN, clock: fakeClock(T0, 0.5) }));

    expect(error).toBe(lost);
    expect(h.calls).toEqual(['UpdateItem InternalServerError', 'UpdateItem ok']);
    expect(await h.item(clientPk(a))).toEqual({ ...boundClientItem(a, T0 - 2 * MIN), ...releasedBy('h2') });
  });

  it('rethrows the table error, not the failed give-back, when the give-back fails too', async () => {
    const first = awsError('InternalServerError');
    h.on({ op: 'UpdateItem', nth: 1, error: first }).on({ op: 'UpdateItem', nth: 2, error: awsError('ThrottlingException') });

    await expect(takeLease(h.table, take('h1'), { waitUntil: T0 + MIN, clock: fakeClock(T0, 0.5) })).rejects.toBe(first);
    expect(h.calls).toEqual(['UpdateItem InternalServerError', 'UpdateItem ThrottlingException']);
    expect(await h.items()).toEqual({});
  });
});

describe('StateTable.acquire: who holds the lease (VI)', () => {
  it('binds on a first acquire with credentials, kind and a retirement intent, all in the client-side write', async () => {
    const m = binding('m', 'client-m', { kind: 'm2m', credentialsSecretId: 'creds-1' });
    const r = retirement(T0 + 60 * MIN, 2, { previousSecretId: 'secret-old', movedAt: T0 - 1, deferred: true });
    const take = request(m, 'h1', T0, { retirement: r });

    expect(await h.table.acquire(take)).toEqual({ kind: 'acquired', previous: undefined, tookOverExpired: undefined, bound: true });

    expect(h.calls).toEqual(FIRST_BIND_CALLS);
    expect(await h.items()).toEqual({
      [clientPk(m)]: { ...boundClientItem(m, T0), ...leaseFields(take), ...retirementFields(r) },
      [secretPk(m)]: secretItemOf(m, T0),
    });
    expect(await h.table.readClient(m)).toEqual(
      record(m, {
        binding: m,
        boundAt: iso(T0),
        lease: leaseOf(take),
        retirement: { ...r, previousSecretId: 'secret-old', movedAt: T0 - 1, deferred: true },
      }),
    );
  });

  it('takes the lease of a client bound through a credentials secret in one write, with the same credentials only', async () => {
    const m = binding('m', 'client-m', { credentialsSecretId: 'creds-1' });
    await h.table.acquire(request(m, 'h1', T0));
    await h.table.release(m, 'h1');
    // Both sides of the binding name the credentials secret.
    expect(await h.table.checkBinding(m)).toBe('bound');
    h.reset();

    expect(await h.table.acquire(request(m, 'h2', T0 + MIN))).toMatchObject({ kind: 'acquired', bound: false });
    expect(h.calls).toEqual(['UpdateItem ok']);
    await h.table.release(m, 'h2');

    const defaults = binding('m', 'client-m');
    await expect(h.table.acquire(request(defaults, 'h3', T0 + 2 * MIN))).rejects.toThrow(
      "is bound to client client-m through credentials secret creds-1, but its value names the function's default credentials",
    );
    expect((await h.table.readClient(m))?.lease).toBeUndefined();
  });

  it('takes a free lease in one conditional write, writing the retirement intent with it', async () => {
    await h.table.acquire(request(a, 'h1', T0));
    await h.table.release(a, 'h1');
    h.reset();
    const r = retirement(T0 + 60 * MIN);

    const result = await h.table.acquire(request(a, 'h2', T0 + MIN, { retirement: r }));

    expect(result).toEqual({ kind: 'acquired', previous: record(a, { binding: a, boundAt: iso(T0) }), tookOverExpired: undefined, bound: false });
    expect(h.calls).toEqual(['UpdateItem ok']);
    expect(await h.item(clientPk(a))).toEqual({ ...boundClientItem(a, T0), ...releasedBy('h1'), ...leaseFields(request(a, 'h2', T0 + MIN)), ...retirementFields(r) });
    // A record's optional fields read back as absent when they were written empty.
    expect((await h.table.readClient(a))?.retirement).toEqual({ ...r, previousSecretId: undefined, movedAt: undefined, deferred: undefined });
  });

  it('reports a lease held up to and including its until, and takes it over one millisecond later', async () => {
    const first = request(a, 'h1', T0, { until: T0 + MIN });
    await h.table.acquire(first);
    h.reset();

    expect(await h.table.acquire(request(a, 'h2', T0 + MIN))).toEqual({ kind: 'held', lease: leaseOf(first) });
    expect(h.calls).toEqual(['UpdateItem ConditionalCheckFailedException', 'GetItem ok']);
    h.reset();

    const late = request(a, 'h2', T0 + MIN + 1);
    expect(await h.table.acquire(late)).toEqual({
      kind: 'acquired',
      previous: record(a, { binding: a, boundAt: iso(T0), lease: leaseOf(first) }),
      tookOverExpired: leaseOf(first),
      bound: false,
    });
    expect(h.calls).toEqual(['UpdateItem ok']);
    expect(await h.item(clientPk(a))).toEqual({ ...boundClientItem(a, T0), ...leaseFields(late) });
  });

  it('takes over, rather than reports, an expired lease it finds after losing a race for the write', async () => {
    const expired = request(a, 'h1', T0 - 2 * MIN, { until: T0 - 1 });
    await h.table.acquire(expired);
    h.reset();
    // The lease write loses to a concurrent one; by the read, what is there is an expired lease.
    h.on({ op: 'UpdateItem', nth: 1, error: awsError('ConditionalCheckFailedException') });

    expect(await h.table.acquire(request(a, 'h2', T0))).toEqual({
      kind: 'acquired',
      previous: record(a, { binding: a, boundAt: iso(T0 - 2 * MIN), lease: leaseOf(expired) }),
      tookOverExpired: leaseOf(expired),
      bound: false,
    });
    expect(h.calls).toEqual(['UpdateItem ConditionalCheckFailedException', 'GetItem ok', 'UpdateItem ok']);
  });

  it('finds its own lease when the SDK retried a write that had taken effect: acquired, not held', async () => {
    const mine = request(a, 'h1', T0);
    await h.table.acquire(mine);
    h.reset();

    const again = await h.table.acquire(request(a, 'h1', T0 + 1));

    expect(again).toEqual({ kind: 'acquired', previous: record(a, { binding: a, boundAt: iso(T0), lease: leaseOf(mine) }), tookOverExpired: undefined, bound: false });
    expect(h.calls).toEqual(['UpdateItem ConditionalCheckFailedException', 'GetItem ok']);
  });

  it("finds its own operator's lease on an unbound client; a bind by the same holder name waits for it instead", async () => {
    const op = request(a, 'op', T0, { bind: false });
    await h.table.acquire(op);
    h.reset();

    expect(await h.table.acquire(request(a, 'op', T0 + 1, { bind: false }))).toEqual({
      kind: 'acquired',
      previous: record(a, { lease: leaseOf(op) }),
      tookOverExpired: undefined,
      bound: false,
    });
    expect(await h.table.acquire(request(a, 'op', T0 + 2))).toEqual({ kind: 'held', lease: leaseOf(op) });
    expect(await h.items()).toEqual({ [clientPk(a)]: leaseOnlyItem(a, op) });
  });

  it('reports a lease-only lease held up to its until, and takes it over after', async () => {
    const op = request(a, 'op', T0, { bind: false, until: T0 + MIN });
    await h.table.acquire(op);
    h.reset();

    expect(await h.table.acquire(request(a, 'op-2', T0 + MIN, { bind: false }))).toEqual({ kind: 'held', lease: leaseOf(op) });
    const late = request(a, 'op-2', T0 + MIN + 1, { bind: false });
    expect(await h.table.acquire(late)).toEqual({ kind: 'acquired', previous: record(a, { lease: leaseOf(op) }), tookOverExpired: leaseOf(op), bound: false });
    expect(await h.items()).toEqual({ [clientPk(a)]: leaseOnlyItem(a, late) });
  });

  it('refuses to bind a client an administrator set free, writing nothing; an operator may still lease it', async () => {
    await h.put(unboundClientItem(a, T0 - MIN));
    h.reset();

    const error = await caught(h.table.acquire(request(a, 'h1', T0)));
    expect(error).toBeInstanceOf(BindingError);
    expect(error.message).toBe(
      `Stytch client client-x of project ${PROJECT} was unbound by an administrator (${iso(T0 - MIN)}); only an administrator binds it again, ` +
        `so secret ${a.secretArn} may not claim it; nothing was changed. ${REBIND_FIX}`,
    );
    expect(h.calls).toEqual(['UpdateItem ConditionalCheckFailedException', 'GetItem ok']);
    expect(await h.items()).toEqual({ [clientPk(a)]: unboundClientItem(a, T0 - MIN) });

    h.reset();
    const op = request(a, 'op', T0, { bind: false });
    expect(await h.table.acquire(op)).toEqual({ kind: 'acquired', previous: record(a, { unboundAt: iso(T0 - MIN) }), tookOverExpired: undefined, bound: false });
    // No TTL: the marker must outlive the operator's lease.
    expect(h.calls).toEqual(['UpdateItem ConditionalCheckFailedException', 'GetItem ok', 'UpdateItem ConditionalCheckFailedException', 'UpdateItem ok']);
    expect(await h.items()).toEqual({ [clientPk(a)]: { ...unboundClientItem(a, T0 - MIN), ...leaseFields(op) } });
  });

  it('gives up after six looks at an item that keeps changing, saying so', async () => {
    await h.table.acquire(request(a, 'h1', T0 - 2 * MIN));
    await h.table.release(a, 'h1');
    h.reset();
    h.on({ op: 'UpdateItem', nth: 'every', error: awsError('ConditionalCheckFailedException') });

    const error = await caught(h.table.acquire(request(a, 'h2', T0)));

    expect(error.message).toBe(`The state table item ${clientPk(a)} kept changing while taking its lease; try again.`);
    expect(h.calls).toEqual(Array(6).fill(['UpdateItem ConditionalCheckFailedException', 'GetItem ok']).flat());
  });

  it('rethrows a table error of the lease write instead of reading the item', async () => {
    await h.table.acquire(request(a, 'h1', T0 - 2 * MIN));
    await h.table.release(a, 'h1');
    h.reset();
    const failure = awsError('InternalServerError');
    h.on({ op: 'UpdateItem', nth: 1, error: failure });

    await expect(h.table.acquire(request(a, 'h2', T0))).rejects.toBe(failure);
    expect(h.calls).toEqual(['UpdateItem InternalServerError']);
  });

  it('rethrows a table error of the lease-only write', async () => {
    const failure = awsError('InternalServerError');
    h.on({ op: 'UpdateItem', nth: 2, error: failure });

    await expect(h.table.acquire(request(a, 'op', T0, { bind: false }))).rejects.toBe(failure);
    expect(h.calls).toEqual(['UpdateItem ConditionalCheckFailedException', 'GetItem no item', 'UpdateItem InternalServerError']);
    expect(await h.items()).toEqual({});
  });

  it('rethrows table errors of either half of a first binding', async () => {
    const secretSide = awsError('InternalServerError');
    h.on({ op: 'PutItem', nth: 1, error: secretSide });
    await expect(h.table.acquire(request(a, 'h1', T0))).rejects.toBe(secretSide);
    expect(await h.items()).toEqual({});

    h.reset();
    const clientSide = awsError('ThrottlingException');
    h.on({ op: 'UpdateItem', nth: 2, error: clientSide });
    await expect(h.table.acquire(request(a, 'h1', T0))).rejects.toBe(clientSide);
    expect(h.calls).toEqual(['UpdateItem ConditionalCheckFailedException', 'GetItem no item', 'PutItem ok', 'UpdateItem ThrottlingException']);
  });

  it('accepts an item written before kinds were recorded, and records the kind with the lease', async () => {
    const legacy = binding('a', 'client-x', { kind: undefined });
    const { client_kind: _dropped, ...withoutKind } = boundClientItem(legacy, T0 - MIN);
    await h.put(withoutKind);
    await h.put(secretItemOf(legacy, T0 - MIN));
    h.reset();

    const m2m = binding('a', 'client-x', { kind: 'm2m' });
    const result = await h.table.acquire(request(m2m, 'h1', T0));

    expect(result).toMatchObject({ kind: 'acquired', previous: record(a, { binding: legacy, boundAt: iso(T0 - MIN) }) });
    expect(h.calls).toEqual(['UpdateItem ok']);
    expect(await h.item(clientPk(a))).toEqual({ ...withoutKind, client_kind: S('m2m'), ...leaseFields(request(m2m, 'h1', T0)) });
    expect(await h.table.checkBinding(m2m)).toBe('bound');
  });

  it('takes the lease for a caller that knows no kind (read from an item written before kinds were) without checking or recording one', async () => {
    // The sweep's binding comes from the item: an M2M client's item without client_kind must not become a Connected App's.
    const legacy = binding('a', 'client-x', { kind: undefined });
    const { client_kind: _dropped, ...withoutKind } = boundClientItem(legacy, T0 - MIN);
    await h.put(withoutKind);
    await h.put(secretItemOf(legacy, T0 - MIN));
    h.reset();
    await h.table.acquire(request(legacy, 'sweep', T0, { bind: false }));
    expect(h.calls).toEqual(['UpdateItem ok']);
    expect(await h.item(clientPk(a))).toEqual({ ...withoutKind, ...leaseFields(request(legacy, 'sweep', T0)) });
    await h.table.release(a, 'sweep');

    // The first step that knows the kind records it, whichever it is.
    const m2m = binding('a', 'client-x', { kind: 'm2m' });
    await h.table.acquire(request(m2m, 'h1', T0));
    expect((await h.item(clientPk(a)))?.client_kind).toEqual(S('m2m'));
    await h.table.release(a, 'h1');

    // An item that records a kind leases to a caller that knows none in one write, and keeps its kind.
    h.reset();
    await h.table.acquire(request(legacy, 'sweep', T0, { bind: false }));
    expect(h.calls).toEqual(['UpdateItem ok']);
    expect((await h.item(clientPk(a)))?.client_kind).toEqual(S('m2m'));
    await h.table.release(a, 'sweep');

    // A value that names another kind than the one recorded is refused.
    const error = await caught(h.table.acquire(request(binding('a', 'client-x', { kind: 'connected_app' }), 'h3', T0)));
    expect(error.message).toBe(
      `Secret ${a.secretArn} is bound to m2m client client-x, but its value makes it a connected_app client (client_kind); nothing was changed. ` +
        `Restore client_kind in the value, or rebind. ${REBIND_FIX}`,
    );
  });

  it('binds a value that names no kind as a Connected App client', async () => {
    const noKind = binding('a', 'client-x', { kind: undefined });
    await h.table.acquire(request(noKind, 'h1', T0));
    expect(await h.items()).toEqual({
      [clientPk(a)]: { ...boundClientItem(noKind, T0), ...leaseFields(request(noKind, 'h1', T0)) },
      [secretPk(a)]: secretItemOf(noKind, T0),
    });
  });
});

describe('StateTable.acquire: which binding wins (VII)', () => {
  it("completes a twin's half-made binding: the secret side it wrote is kept as it is", async () => {
    await h.put(secretItemOf(a, T0 - MIN));

    const result = await h.table.acquire(request(a, 'h1', T0));

    expect(result).toEqual({ kind: 'acquired', previous: undefined, tookOverExpired: undefined, bound: true });
    expect(h.calls).toEqual(['UpdateItem ConditionalCheckFailedException', 'GetItem no item', 'PutItem ConditionalCheckFailedException', 'GetItem ok', 'UpdateItem ok']);
    expect(await h.items()).toEqual({
      [clientPk(a)]: { ...boundClientItem(a, T0), ...leaseFields(request(a, 'h1', T0)) },
      [secretPk(a)]: secretItemOf(a, T0 - MIN),
    });
  });

  it('refuses a secret an administrator set free, creating no client side', async () => {
    await h.put(unboundSecretItem(a, T0 - MIN));

    const error = await caught(h.table.acquire(request(a, 'h1', T0)));

    expect(error).toBeInstanceOf(BindingError);
    expect(error).toBeInstanceOf(InvalidInputError);
    expect(error.message).toBe(
      `Secret ${a.secretArn} was unbound from its Stytch client by an administrator (${iso(T0 - MIN)}); its rotations are refused until an administrator binds it again, ` +
        `so its value cannot choose a client. ${REBIND_FIX}`,
    );
    expect(h.calls).toEqual(['UpdateItem ConditionalCheckFailedException', 'GetItem no item', 'PutItem ConditionalCheckFailedException', 'GetItem ok']);
    expect(await h.items()).toEqual({ [secretPk(a)]: unboundSecretItem(a, T0 - MIN) });
  });

  it('refuses a value naming another client than the secret side, creating no client side', async () => {
    await h.put(secretItemOf(binding('a', 'client-z'), T0 - MIN));

    const error = await caught(h.table.acquire(request(a, 'h1', T0)));

    expect(error.message).toBe(
      `Secret ${a.secretArn} is bound to Stytch client client-z of project ${PROJECT}, but its value names client client-x of project ${PROJECT}. ` +
        `A rotation acts only on the client its secret is bound to; nothing was changed. ${REBIND_FIX}`,
    );
    expect(Object.keys(await h.items())).toEqual([secretPk(a)]);
  });

  it('starts over when the secret side it collided with is gone again', async () => {
    h.on({ op: 'PutItem', nth: 1, error: awsError('ConditionalCheckFailedException') });

    const result = await h.table.acquire(request(a, 'h1', T0));

    expect(result).toEqual({ kind: 'acquired', previous: undefined, tookOverExpired: undefined, bound: true });
    expect(h.calls).toEqual([
      'UpdateItem ConditionalCheckFailedException',
      'GetItem no item',
      'PutItem ConditionalCheckFailedException',
      'GetItem no item',
      ...FIRST_BIND_CALLS,
    ]);
  });

  it('undoes its secret side when the client was bound to another secret meanwhile, then refuses', async () => {
    const b = binding('b', 'client-x');
    // Between the secret-side write and the client-side write, secret b is bound to client x.
    h.on({ op: 'UpdateItem', nth: 2, act: async () => (await h.put(secretItemOf(b, T0)), await h.put(boundClientItem(b, T0))) });

    const error = await caught(h.table.acquire(request(a, 'h1', T0)));

    expect(error.message).toBe(
      `Stytch client client-x of project ${PROJECT} is bound to another secret (${b.secretArn}); secret ${a.secretArn} may not rotate it. ` +
        `One client is rotated through one secret only; nothing was changed. ${REBIND_FIX}`,
    );
    expect(h.calls).toEqual([
      ...FIRST_BIND_CALLS.slice(0, 3),
      'UpdateItem ConditionalCheckFailedException',
      'GetItem ok',
      'DeleteItem ok',
      'UpdateItem ConditionalCheckFailedException',
      'GetItem ok',
    ]);
    expect(await h.items()).toEqual({ [clientPk(b)]: boundClientItem(b, T0), [secretPk(b)]: secretItemOf(b, T0) });
  });

  it('undoes its secret side when an administrator set the client free meanwhile, then refuses', async () => {
    h.on({ op: 'UpdateItem', nth: 2, act: () => h.put(unboundClientItem(a, T0)) });

    const error = await caught(h.table.acquire(request(a, 'h1', T0)));

    expect(error.message).toMatch(/^Stytch client client-x of project .* was unbound by an administrator/);
    expect(h.calls).toEqual([...FIRST_BIND_CALLS.slice(0, 3), 'UpdateItem ConditionalCheckFailedException', 'GetItem ok', 'DeleteItem ok', 'UpdateItem ConditionalCheckFailedException', 'GetItem ok']);
    expect(await h.items()).toEqual({ [clientPk(a)]: unboundClientItem(a, T0) });
  });

  it('keeps its secret side when an operator leased the unbound client meanwhile, and waits for that lease', async () => {
    const op = request(a, 'op', T0, { bind: false });
    h.on({ op: 'UpdateItem', nth: 2, act: () => h.put(leaseOnlyItem(a, op)) });

    expect(await h.table.acquire(request(a, 'h1', T0))).toEqual({ kind: 'held', lease: leaseOf(op) });

    expect(h.calls).toEqual([...FIRST_BIND_CALLS.slice(0, 3), 'UpdateItem ConditionalCheckFailedException', 'GetItem ok', 'UpdateItem ConditionalCheckFailedException', 'GetItem ok']);
    expect(await h.items()).toEqual({ [clientPk(a)]: leaseOnlyItem(a, op), [secretPk(a)]: secretItemOf(a, T0) });
  });

  it('binds on the next look when the lease-only item that blocked the client side is gone by the read', async () => {
    const op = request(a, 'op', T0 - MIN, { bind: false });
    h.on({ op: 'UpdateItem', nth: 2, act: () => h.put(leaseOnlyItem(a, op)) });
    // The operator gives its lease back (deleting the item) between the failed write and the read.
    h.on({ op: 'GetItem', nth: 2, act: () => dynamo.handle('DeleteItem', { TableName: h.tableName, Key: { pk: S(clientPk(a)) } }) });

    expect(await h.table.acquire(request(a, 'h1', T0))).toEqual({ kind: 'acquired', previous: undefined, tookOverExpired: undefined, bound: true });

    expect(h.calls).toEqual([...FIRST_BIND_CALLS.slice(0, 3), 'UpdateItem ConditionalCheckFailedException', 'GetItem no item', ...FIRST_BIND_CALLS.slice(0, 2), 'PutItem ConditionalCheckFailedException', 'GetItem ok', 'UpdateItem ok']);
    expect(await h.items()).toEqual({ [clientPk(a)]: { ...boundClientItem(a, T0), ...leaseFields(request(a, 'h1', T0)) }, [secretPk(a)]: secretItemOf(a, T0) });
  });

  it("leaves a secret side a twin wrote, even when the client went to another secret meanwhile: it undoes only its own", async () => {
    const b = binding('b', 'client-x');
    // The twin wrote the same secret side at the same instant, then stopped.
    await h.put(secretItemOf(a, T0));
    h.on({ op: 'UpdateItem', nth: 2, act: async () => (await h.put(secretItemOf(b, T0)), await h.put(boundClientItem(b, T0))) });

    await expect(h.table.acquire(request(a, 'h1', T0))).rejects.toBeInstanceOf(BindingError);

    expect(h.calls).not.toContain('DeleteItem ok');
    expect(await h.item(secretPk(a))).toEqual(secretItemOf(a, T0));
  });

  it('keeps its secret side when a twin finished the same binding meanwhile, and waits for the twin\'s lease', async () => {
    const twin = request(a, 'twin', T0);
    // Between this secret-side write and the client-side write, a twin binds the client to the same secret and takes the lease.
    h.on({ op: 'UpdateItem', nth: 2, act: () => h.put({ ...boundClientItem(a, T0), ...leaseFields(twin) }) });

    expect(await h.table.acquire(request(a, 'h1', T0))).toEqual({ kind: 'held', lease: leaseOf(twin) });

    expect(h.calls).toEqual([...FIRST_BIND_CALLS.slice(0, 3), 'UpdateItem ConditionalCheckFailedException', 'GetItem ok', 'UpdateItem ConditionalCheckFailedException', 'GetItem ok']);
    expect(await h.items()).toEqual({ [clientPk(a)]: { ...boundClientItem(a, T0), ...leaseFields(twin) }, [secretPk(a)]: secretItemOf(a, T0) });
  });

  it('still refuses when undoing its secret side fails: a leftover blocks only that secret', async () => {
    const b = binding('b', 'client-x');
    h.on({ op: 'UpdateItem', nth: 2, act: async () => (await h.put(secretItemOf(b, T0)), await h.put(boundClientItem(b, T0))) });
    h.on({ op: 'DeleteItem', nth: 1, error: awsError('InternalServerError') });

    const error = await caught(h.table.acquire(request(a, 'h1', T0)));

    expect(error).toBeInstanceOf(BindingError);
    expect(await h.item(secretPk(a))).toEqual(secretItemOf(a, T0));
  });
});

describe('StateTable: lease-only items (an operator on an unbound client)', () => {
  it('expires a fresh lease-only item a day after its lease (rounded up to the second)', async () => {
    const op = request(a, 'op', T0, { bind: false, until: T0 + 5 * MIN + 1 });

    expect(await h.table.acquire(op)).toEqual({ kind: 'acquired', previous: undefined, tookOverExpired: undefined, bound: false });

    expect(h.calls).toEqual(['UpdateItem ConditionalCheckFailedException', 'GetItem no item', 'UpdateItem ok']);
    expect(await h.items()).toEqual({ [clientPk(a)]: { ...leaseOnlyItem(a, op), expires_at: N((T0 + 5 * MIN) / 1000 + 1 + 86_400) } });
  });

  it('gives no expiry to a client that still owes a retirement', async () => {
    const r = retirement(T0 - MIN);
    await h.put({ pk: S(clientPk(a)), project_id: S(PROJECT), client_id: S('client-x'), ...retirementFields(r) });
    h.reset();

    const op = request(a, 'op', T0, { bind: false });
    expect(await h.table.acquire(op)).toEqual({ kind: 'acquired', previous: record(a, { retirement: r }), tookOverExpired: undefined, bound: false });

    expect(h.calls).toEqual(['UpdateItem ConditionalCheckFailedException', 'GetItem ok', 'UpdateItem ConditionalCheckFailedException', 'UpdateItem ok']);
    expect(await h.item(clientPk(a))).toEqual({ pk: S(clientPk(a)), project_id: S(PROJECT), client_id: S('client-x'), ...retirementFields(r), ...leaseFields(op) });
  });

  it('looks again when both lease-only writes lose a race', async () => {
    h.on({ op: 'UpdateItem', nth: 2, error: awsError('ConditionalCheckFailedException') });
    h.on({ op: 'UpdateItem', nth: 3, error: awsError('ConditionalCheckFailedException') });
    const op = request(a, 'op', T0, { bind: false });

    expect(await h.table.acquire(op)).toEqual({ kind: 'acquired', previous: undefined, tookOverExpired: undefined, bound: false });
    expect(h.calls).toEqual([
      'UpdateItem ConditionalCheckFailedException',
      'GetItem no item',
      'UpdateItem ConditionalCheckFailedException',
      'UpdateItem ConditionalCheckFailedException',
      'UpdateItem ConditionalCheckFailedException',
      'GetItem no item',
      'UpdateItem ok',
    ]);
    expect(await h.items()).toEqual({ [clientPk(a)]: leaseOnlyItem(a, op) });
  });
});

describe('StateTable.release: giving the lease back', () => {
  it('says a retried give-back whose first answer was lost landed, even after another holder took the lease', async () => {
    await h.table.acquire(request(a, 'h1', T0));
    await h.table.release(a, 'h1');
    await h.table.acquire(request(a, 'h2', T0 + MIN));
    h.reset();

    expect(await h.table.release(a, 'h1')).toBe(true);

    expect(h.calls).toEqual(['UpdateItem ConditionalCheckFailedException', 'GetItem ok']);
    expect(await h.item(clientPk(a))).toEqual({ ...boundClientItem(a, T0), ...releasedBy('h1'), ...leaseFields(request(a, 'h2', T0 + MIN)) });
  });

  it('says false to a holder whose lease expired and was taken over, and writes nothing', async () => {
    await h.table.acquire(request(a, 'h1', T0, { until: T0 + 1 }));
    await h.table.acquire(request(a, 'h2', T0 + 2));
    const before = await h.items();
    h.reset();

    expect(await h.table.release(a, 'h1', null)).toBe(false);
    expect(h.calls).toEqual(['UpdateItem ConditionalCheckFailedException', 'GetItem ok']);
    expect(await h.items()).toEqual(before);
  });

  it('says true when there is nothing left to give back: no item, or no lease', async () => {
    expect(await h.table.release(a, 'h1')).toBe(true);
    expect(h.calls).toEqual(['UpdateItem ConditionalCheckFailedException', 'GetItem no item']);

    await h.put({ ...boundClientItem(a, T0), ...releasedBy('h0') });
    h.reset();
    expect(await h.table.release(a, 'h1')).toBe(true);
    expect(h.calls).toEqual(['UpdateItem ConditionalCheckFailedException', 'GetItem ok']);
    expect(await h.items()).toEqual({ [clientPk(a)]: { ...boundClientItem(a, T0), ...releasedBy('h0') } });
  });

  it('clears every retirement field with null, and sets all of them with a retirement', async () => {
    const full = retirement(T0 + MIN, 3, { previousSecretId: 'secret-old', movedAt: T0, deferred: true });
    await h.table.acquire(request(a, 'h1', T0));
    expect(await h.table.release(a, 'h1', full)).toBe(true);
    expect(await h.item(clientPk(a))).toEqual({ ...boundClientItem(a, T0), ...retirementFields(full), ...releasedBy('h1') });

    await h.table.acquire(request(a, 'h2', T0 + MIN));
    expect(await h.table.release(a, 'h2', null)).toBe(true);
    expect(await h.item(clientPk(a))).toEqual({ ...boundClientItem(a, T0), ...releasedBy('h2') });
  });

  it('deletes a lease-only item with its lease, in one more call', async () => {
    await h.table.acquire(request(a, 'op', T0, { bind: false }));
    h.reset();

    expect(await h.table.release(a, 'op')).toBe(true);

    expect(h.calls).toEqual(['UpdateItem ok', 'DeleteItem ok']);
    expect(await h.items()).toEqual({});
  });

  it('keeps, without trying to delete it, a lease-only item that now owes a retirement or was set free', async () => {
    const r = retirement(T0 + MIN);
    await h.table.acquire(request(a, 'op', T0, { bind: false }));
    h.reset();
    expect(await h.table.release(a, 'op', r)).toBe(true);
    expect(h.calls).toEqual(['UpdateItem ok']);
    expect(await h.item(clientPk(a))).toEqual({
      pk: S(clientPk(a)),
      project_id: S(PROJECT),
      client_id: S('client-x'),
      expires_at: leaseOnlyItem(a, request(a, 'op', T0, { bind: false })).expires_at!,
      ...retirementFields(r),
      ...releasedBy('op'),
    });

    const y = binding('a', 'client-y');
    await h.put(unboundClientItem(y, T0));
    await h.table.acquire(request(y, 'op', T0, { bind: false }));
    h.reset();
    expect(await h.table.release(y, 'op')).toBe(true);
    expect(h.calls).toEqual(['UpdateItem ok']);
    expect(await h.item(clientPk(y))).toEqual({ ...unboundClientItem(y, T0), ...releasedBy('op') });
  });

  it('leaves a lease-only item another holder took between the give-back and the delete', async () => {
    const next = request(a, 'op-2', T0 + MIN, { bind: false });
    await h.table.acquire(request(a, 'op', T0, { bind: false }));
    h.reset();
    h.on({
      op: 'DeleteItem',
      nth: 1,
      act: () =>
        dynamo.handle('UpdateItem', {
          TableName: h.tableName,
          Key: { pk: S(clientPk(a)) },
          UpdateExpression: 'SET lease_holder = :h, lease_until = :u, lease_what = :w',
          ExpressionAttributeValues: { ':h': S(next.holder), ':u': N(next.until), ':w': S(next.what) },
        }),
    });

    expect(await h.table.release(a, 'op')).toBe(true);

    expect(h.calls).toEqual(['UpdateItem ok', 'DeleteItem ConditionalCheckFailedException']);
    expect((await h.table.readClient(a))?.lease).toEqual(leaseOf(next));
  });

  it('rethrows table errors of the give-back and of the delete', async () => {
    await h.table.acquire(request(a, 'op', T0, { bind: false }));
    h.reset();
    const write = awsError('InternalServerError');
    h.on({ op: 'UpdateItem', nth: 1, error: write });
    await expect(h.table.release(a, 'op')).rejects.toBe(write);
    expect(h.calls).toEqual(['UpdateItem InternalServerError']);

    h.reset();
    const remove = awsError('ThrottlingException');
    h.on({ op: 'DeleteItem', nth: 1, error: remove });
    await expect(h.table.release(a, 'op')).rejects.toBe(remove);
    expect(h.calls).toEqual(['UpdateItem ok', 'DeleteItem ThrottlingException']);
  });
});

describe('StateTable.rebind: an administrator moves a binding (VII)', () => {
  it('changes the credentials of a binding in place: no client is detached and no secret set free', async () => {
    await h.table.acquire(request(a, 'h1', T0));
    await h.table.release(a, 'h1');
    h.reset();
    const withCreds = binding('a', 'client-x', { credentialsSecretId: 'creds-2' });

    expect(await h.table.rebind(withCreds, new Date(T0 + MIN))).toEqual({ previousOfSecret: { ...a, boundAt: iso(T0) }, previousOfClient: a.secretArn });

    expect(h.calls).toEqual(['GetItem ok', 'GetItem ok', 'PutItem ok', 'UpdateItem ok']);
    expect(await h.items()).toEqual({
      [clientPk(a)]: { ...boundClientItem(withCreds, T0 + MIN), ...releasedBy('h1') },
      [secretPk(a)]: secretItemOf(withCreds, T0 + MIN),
    });

    // And back to the function's default credentials, with no kind given: Connected App on the client side.
    const plain = binding('a', 'client-x', { kind: undefined });
    await h.table.rebind(plain, new Date(T0 + 2 * MIN));
    expect(await h.items()).toEqual({
      [clientPk(a)]: { ...boundClientItem(plain, T0 + 2 * MIN), ...releasedBy('h1') },
      [secretPk(a)]: secretItemOf(plain, T0 + 2 * MIN),
    });
  });

  it('moves a client to another secret: detaches it, marks the secret set free, then binds', async () => {
    await h.table.acquire(request(a, 'h1', T0));
    await h.table.release(a, 'h1');
    h.reset();
    const b = binding('b', 'client-x');

    expect(await h.table.rebind(b, new Date(T0 + MIN))).toEqual({ previousOfSecret: undefined, previousOfClient: a.secretArn });

    expect(h.calls).toEqual(['GetItem no item', 'GetItem ok', 'UpdateItem ok', 'PutItem ok', 'PutItem ok', 'UpdateItem ok']);
    expect(await h.items()).toEqual({
      [clientPk(a)]: { ...boundClientItem(b, T0 + MIN), ...releasedBy('h1') },
      [secretPk(a)]: unboundSecretItem(a, T0 + MIN),
      [secretPk(b)]: secretItemOf(b, T0 + MIN),
    });
    await expect(h.table.acquire(request(a, 'h2', T0 + 2 * MIN))).rejects.toThrow(/is bound to another secret/);
  });

  it('moves a secret to another client: the old client is set free, keeping what it owes', async () => {
    const r = retirement(T0 + 60 * MIN);
    await h.table.acquire(request(a, 'h1', T0));
    await h.table.release(a, 'h1', r);
    h.reset();
    const y = binding('a', 'client-y');

    expect(await h.table.rebind(y, new Date(T0 + MIN))).toEqual({ previousOfSecret: { ...a, boundAt: iso(T0) }, previousOfClient: undefined });

    expect(h.calls).toEqual(['GetItem ok', 'GetItem no item', 'UpdateItem ok', 'PutItem ok', 'UpdateItem ok']);
    expect(await h.items()).toEqual({
      [clientPk(a)]: { ...unboundClientItem(a, T0 + MIN), ...retirementFields(r), ...releasedBy('h1') },
      [clientPk(y)]: boundClientItem(y, T0 + MIN),
      [secretPk(a)]: secretItemOf(y, T0 + MIN),
    });
  });

  it('marks no client unbound that only a half-made binding named', async () => {
    // A first rotation that stopped after the secret side.
    await h.put(secretItemOf(a, T0));
    const y = binding('a', 'client-y');

    await h.table.rebind(y, new Date(T0 + MIN));

    expect(h.calls).toEqual(['GetItem ok', 'GetItem no item', 'UpdateItem ConditionalCheckFailedException', 'PutItem ok', 'UpdateItem ok']);
    expect(await h.items()).toEqual({ [clientPk(y)]: boundClientItem(y, T0 + MIN), [secretPk(a)]: secretItemOf(y, T0 + MIN) });
  });

  it('rethrows a table error while detaching a client, before binding anything', async () => {
    await h.table.acquire(request(a, 'h1', T0));
    await h.table.release(a, 'h1');
    h.reset();
    const failure = awsError('InternalServerError');
    h.on({ op: 'UpdateItem', nth: 1, error: failure });

    await expect(h.table.rebind(binding('a', 'client-y'), new Date(T0 + MIN))).rejects.toBe(failure);
    expect(h.calls).toEqual(['GetItem ok', 'GetItem no item', 'UpdateItem InternalServerError']);
  });
});

describe('StateTable.markCreated: the project secret a holder is creating', () => {
  beforeEach(async () => {
    await h.table.acquire(request(a, 'h1', T0));
    h.reset();
  });

  it('records the intent, then the id, then a new intent without the old id, then clears it', async () => {
    expect(await h.table.markCreated(a, 'h1', { versionId: 'v1', at: T0 + 1, secretId: undefined })).toBe(true);
    expect(await h.item(clientPk(a))).toMatchObject({ created_version: S('v1'), created_at: N(T0 + 1) });
    expect((await h.item(clientPk(a)))?.created_secret_id).toBeUndefined();
    expect((await h.table.readClient(a))?.created).toEqual({ versionId: 'v1', at: T0 + 1, secretId: undefined });

    expect(await h.table.markCreated(a, 'h1', { versionId: 'v1', at: T0 + 2, secretId: 'secret-1' })).toBe(true);
    expect((await h.table.readClient(a))?.created).toEqual({ versionId: 'v1', at: T0 + 2, secretId: 'secret-1' });

    expect(await h.table.markCreated(a, 'h1', { versionId: 'v2', at: T0 + 3, secretId: undefined })).toBe(true);
    expect((await h.table.readClient(a))?.created).toEqual({ versionId: 'v2', at: T0 + 3, secretId: undefined });

    expect(await h.table.markCreated(a, 'h1', null)).toBe(true);
    expect(await h.item(clientPk(a))).toEqual({ ...boundClientItem(a, T0), ...leaseFields(request(a, 'h1', T0)) });
    expect(h.calls.filter((c) => c.startsWith('UpdateItem'))).toEqual(Array(4).fill('UpdateItem ok'));
  });

  it('writes nothing and says false for a caller that no longer holds the lease', async () => {
    expect(await h.table.markCreated(a, 'h2', { versionId: 'v1', at: T0, secretId: 'secret-1' })).toBe(false);
    expect(await h.table.markCreated(binding('a', 'client-nobody'), 'h1', null)).toBe(false);
    expect(await h.items()).toEqual({
      [clientPk(a)]: { ...boundClientItem(a, T0), ...leaseFields(request(a, 'h1', T0)) },
      [secretPk(a)]: secretItemOf(a, T0),
    });
  });

  it('rethrows a table error', async () => {
    const failure = awsError('InternalServerError');
    h.on({ op: 'UpdateItem', nth: 1, error: failure });
    await expect(h.table.markCreated(a, 'h1', null)).rejects.toBe(failure);
  });
});

describe('StateTable reads', () => {
  it('reads an item written before the key fields were copied into it, the client id whole', async () => {
    await h.put({ pk: S(`client#${PROJECT}#weird#id`), secret_arn: S(a.secretArn), lease_holder: S('h1'), created_version: S('v1') });

    expect(await h.table.readClient({ projectId: PROJECT, clientId: 'weird#id' })).toEqual(
      record(
        { projectId: PROJECT, clientId: 'weird#id' },
        {
          binding: { projectId: PROJECT, clientId: 'weird#id', secretArn: a.secretArn, credentialsSecretId: undefined, kind: undefined },
          // A holder without an until is no lease; a creation without a time is at 0.
          lease: undefined,
          created: { versionId: 'v1', at: 0, secretId: undefined },
        },
      ),
    );
    expect(await h.table.readClient(binding('a', 'client-nobody'))).toBeUndefined();

    // An until without a holder is no lease either; a retirement with only its due time reads with empty fields.
    const y = binding('a', 'client-y');
    await h.put({ pk: S(clientPk(y)), project_id: S(PROJECT), client_id: S('client-y'), lease_until: N(T0), retire_due: N(T0 + 1) });
    expect(await h.table.readClient(y)).toEqual(
      record(y, { retirement: { dueAt: T0 + 1, versionId: '', last4: '', previousVersionId: '', previousLast4: '', previousSecretId: undefined, movedAt: undefined, deferred: undefined } }),
    );
  });

  it('reads the secret side as bound, set free, or nothing yet', async () => {
    expect(await h.table.readSecretSide(a.secretArn)).toBeUndefined();
    expect(await h.table.readSecretBinding(a.secretArn)).toBeUndefined();

    await h.put(unboundSecretItem(a, T0));
    expect(await h.table.readSecretSide(a.secretArn)).toEqual({ kind: 'unbound', unboundAt: iso(T0) });
    expect(await h.table.readSecretBinding(a.secretArn)).toBeUndefined();

    // A marker is one without a client: an item naming a client is a binding whatever else it carries.
    await h.put({ ...secretItemOf(a, T0), unbound_at: S(iso(T0 - MIN)) });
    expect(await h.table.readSecretSide(a.secretArn)).toEqual({ kind: 'bound', binding: { ...a, boundAt: iso(T0) } });

    // Fields missing from an older item read as empty, never as another client.
    await h.put({ pk: S(secretPk(a)), secret_arn: S(a.secretArn) });
    expect(await h.table.readSecretBinding(a.secretArn)).toEqual({ secretArn: a.secretArn, projectId: '', clientId: '', credentialsSecretId: undefined, kind: undefined, boundAt: undefined });
  });

  it('reads every table item consistently', async () => {
    await h.table.acquire(request(a, 'h1', T0));
    await h.table.checkBinding(a);
    await collect(h.table.dueRetirements(T0));
    await h.table.release(a, 'h1', retirement(T0));
    await h.table.release(a, 'h1');
    const reads = h.inputs.filter((i) => i.op === 'GetItem' || i.op === 'Scan');
    expect(reads.map((i) => i.op)).toEqual(['GetItem', 'GetItem', 'GetItem', 'Scan', 'GetItem']);
    for (const read of reads) expect(read.input.ConsistentRead).toBe(true);
  });
});

describe('StateTable.checkBinding: a value is checked against the binding, changing nothing (VII)', () => {
  it("says unbound for a secret not bound yet, or only half bound on either side, and bound once both sides agree", async () => {
    expect(await h.table.checkBinding(a)).toBe('unbound');
    await h.put(secretItemOf(a, T0));
    expect(await h.table.checkBinding(a)).toBe('unbound');

    const other = await Harness.create();
    await other.put(boundClientItem(a, T0));
    expect(await other.table.checkBinding(a)).toBe('unbound');

    await h.put(boundClientItem(a, T0));
    expect(await h.table.checkBinding(a)).toBe('bound');
    expect(h.calls).toEqual(['GetItem no item', 'GetItem no item', 'GetItem ok', 'GetItem no item', 'GetItem ok', 'GetItem ok']);
  });

  it('refuses a secret set free, and a client set free', async () => {
    await h.put(unboundSecretItem(a, T0));
    await expect(h.table.checkBinding(a)).rejects.toThrow(`Secret ${a.secretArn} was unbound from its Stytch client by an administrator (${iso(T0)})`);

    const other = await Harness.create();
    await other.put(unboundClientItem(a, T0 + 1));
    const error = await caught(other.table.checkBinding(a));
    expect(error).toBeInstanceOf(BindingError);
    expect(error.message).toBe(
      `Stytch client client-x of project ${PROJECT} was unbound by an administrator (${iso(T0 + 1)}); only an administrator binds it again, ` +
        `so secret ${a.secretArn} may not claim it; nothing was changed. ${REBIND_FIX}`,
    );
  });

  it('refuses another project for the same client id', async () => {
    await h.table.acquire(request(a, 'h1', T0));
    const elsewhere = binding('a', 'client-x', { projectId: OTHER_PROJECT });

    await expect(h.table.checkBinding(elsewhere)).rejects.toThrow(
      `Secret ${a.secretArn} is bound to Stytch client client-x of project ${PROJECT}, but its value names client client-x of project ${OTHER_PROJECT}. `,
    );
  });

  it('refuses a client bound to another secret', async () => {
    const b = binding('b', 'client-x');
    await h.table.acquire(request(b, 'h1', T0));
    await expect(h.table.checkBinding(a)).rejects.toThrow(`Stytch client client-x of project ${PROJECT} is bound to another secret (${b.secretArn}); secret ${a.secretArn} may not rotate it.`);
  });

  it('refuses other credentials, naming both', async () => {
    await h.table.acquire(request(a, 'h1', T0));
    const creds = binding('a', 'client-x', { credentialsSecretId: 'creds-9' });

    const error = await caught(h.table.checkBinding(creds));
    expect(error.message).toBe(
      `Secret ${a.secretArn} is bound to client client-x through the function's default credentials, but its value names credentials secret creds-9; nothing was changed. ` +
        `Restore stytch_credentials_secret_id in the value, or rebind. ${REBIND_FIX}`,
    );

    const other = await Harness.create();
    await other.table.acquire(request(creds, 'h1', T0));
    await expect(other.table.checkBinding(a)).rejects.toThrow(
      `is bound to client client-x through credentials secret creds-9, but its value names the function's default credentials; nothing was changed.`,
    );
  });

  it('accepts any kind against a binding that recorded none, and a value that names none', async () => {
    const legacy = binding('a', 'client-x', { kind: undefined });
    await h.put(secretItemOf(legacy, T0));
    const { client_kind: _dropped, ...withoutKind } = boundClientItem(legacy, T0);
    await h.put(withoutKind);
    expect(await h.table.checkBinding(binding('a', 'client-x', { kind: 'm2m' }))).toBe('bound');

    const other = await Harness.create();
    const m2m = binding('a', 'client-x', { kind: 'm2m' });
    await other.table.acquire(request(m2m, 'h1', T0));
    expect(await other.table.checkBinding(legacy)).toBe('bound');
    await expect(other.table.checkBinding(a)).rejects.toThrow('is bound to m2m client client-x, but its value makes it a connected_app client');
  });
});

describe('StateTable.dueRetirements: when a retirement is due (III)', () => {
  beforeEach(async () => {
    for (const [client, due] of [
      ['client-1', T0 + MIN],
      ['client-2', T0 + 2 * MIN],
      ['client-3', undefined],
    ] as const) {
      const b = binding(`s-${client}`, client);
      await h.table.acquire(request(b, 'h1', T0));
      await h.table.release(b, 'h1', due === undefined ? undefined : retirement(due));
    }
    // An item that is not a client's is never listed, whatever it carries.
    await h.put({ pk: S('secret#foreign'), retire_due: N(T0) });
    h.reset();
  });

  const dueAt = async (now: number) => (await collect(h.table.dueRetirements(now))).map((r) => [r.ref.clientId, r.retirement?.dueAt]).sort();

  it('lists a retirement from the instant it is due, and nothing earlier', async () => {
    expect(await dueAt(T0 + MIN - 1)).toEqual([]);
    expect(await dueAt(T0 + MIN)).toEqual([['client-1', T0 + MIN]]);
    expect(await dueAt(T0 + 2 * MIN)).toEqual([
      ['client-1', T0 + MIN],
      ['client-2', T0 + 2 * MIN],
    ]);
  });

  it('yields whole records, page after page', async () => {
    h.scanLimit = 1;
    const records = await collect(h.table.dueRetirements(T0 + 2 * MIN));
    expect(h.calls.length).toBeGreaterThan(3);
    expect(h.calls.every((c) => c === 'Scan ok')).toBe(true);
    const b1 = binding('s-client-1', 'client-1');
    expect(records.find((r) => r.ref.clientId === 'client-1')).toEqual(record(b1, { binding: b1, boundAt: iso(T0), retirement: retirement(T0 + MIN) }));
    expect(records.map((r) => r.ref.clientId).sort()).toEqual(['client-1', 'client-2']);
  });
});

describe('StateTable: a table that is missing or not allowed says what to fix', () => {
  const failing = (error: unknown): DynamoDBSend => ({ send: (async () => Promise.reject(error)) as DynamoDBSend['send'] });

  it('names the deployment for a missing table, and the permissions for a denied one', async () => {
    const missing = awsError('ResourceNotFoundException');
    const error = await caught(new StateTable(failing(missing), 'my-table').readClient(a));
    expect(error).toBeInstanceOf(InvalidInputError);
    expect(error.cause).toBe(missing);
    expect(error.message).toBe(
      'The state table my-table does not exist in this account and region: deploy it with serverless.yml, or point ROTATION_STATE_TABLE at a table with partition key pk (String).',
    );

    const denied = awsError('AccessDeniedException');
    const refused = await caught(new StateTable(failing(denied), 'my-table').release(a, 'h1'));
    expect(refused).toBeInstanceOf(InvalidInputError);
    expect(refused.cause).toBe(denied);
    expect(refused.message).toBe(
      'The function may not use the state table my-table: its role needs dynamodb:GetItem, PutItem, UpdateItem, DeleteItem and Scan on that table (serverless.yml grants them).',
    );
  });

  it('passes any other failure through as it is, and uses the explanation its caller gives', async () => {
    const throttled = awsError('ThrottlingException');
    await expect(new StateTable(failing(throttled), 'my-table').readClient(a)).rejects.toBe(throttled);
    await expect(new StateTable(failing('not an error'), 'my-table').readClient(a)).rejects.toBe('not an error');
    // Only the SDK's errors are explained: a thrown object that merely has the name is not one of them.
    const lookalike = { name: 'ResourceNotFoundException', message: 'not from the SDK' };
    await expect(new StateTable(failing(lookalike), 'my-table').readClient(a)).rejects.toBe(lookalike);

    const explained = new Error('explained');
    const seen: unknown[] = [];
    const table = new StateTable(failing(throttled), 'my-table', (error, name) => (seen.push(error, name), explained));
    await expect(table.readClient(a)).rejects.toBe(explained);
    expect(seen).toEqual([throttled, 'my-table']);
  });
});
