/**
 * The races a review of the previous version found, each made to happen on
 * purpose against the BUILT bundle on the local stack (real AWS SDK over HTTP,
 * separate containers for concurrent invocations): one invocation is held at
 * a chosen request (before its effect) until the other has either done the
 * harm the race allows, or is seen waiting for the client's lease. Stytch's
 * `rotate` takes no precondition, so without the lease (VI) the held request
 * lands on a state another invocation changed, and AWSCURRENT stops working.
 * The confused-deputy cases check the binding (VII).
 *
 * RACES_BUNDLE=<path to another build> runs the same tests against that
 * bundle (the previous version fails every race here).
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CREDENTIALS_SECRET_NAME, type Container, LOCAL_LAMBDA_ARN, LocalStack, type SeededSecret } from '../../infra/local/stack.js';
import { builtBundle } from '../integration/support.js';

const KINDS = ['connected_app', 'm2m'] as const;

interface Held {
  reached: Promise<void>;
  release(): void;
}

/** The requests the stack serves, with one-shot holds on chosen ones. */
class Traffic {
  readonly seen: Array<{ service: string; operation: string }> = [];
  private holds: Array<{ service: string; match: (operation: string) => boolean; phase: 'before' | 'after'; reach: () => void; opened: Promise<void> }> = [];
  private releases: Array<() => void> = [];

  constructor(private readonly stack: LocalStack) {
    stack.interceptor = async ({ service, operation, phase }) => {
      if (phase === 'before') this.seen.push({ service, operation });
      await this.take(service, operation, phase);
    };
    stack.stytch.interceptor = async ({ operation, phase }) => {
      if (phase === 'before') this.seen.push({ service: 'stytch', operation });
      await this.take('stytch', operation, phase);
    };
  }

  hold(service: 'stytch' | 'secretsmanager' | 'dynamodb', match: (operation: string) => boolean, phase: 'before' | 'after' = 'before'): Held {
    let reach!: () => void;
    let release!: () => void;
    const reached = new Promise<void>((resolve) => (reach = resolve));
    const opened = new Promise<void>((resolve) => (release = resolve));
    this.holds.push({ service, match, phase, reach, opened });
    this.releases.push(release);
    return { reached, release };
  }

  count(service: string, match: (operation: string) => boolean): number {
    return this.seen.filter((c) => c.service === service && match(c.operation)).length;
  }

  /** Opens every hold (a test that failed must not leave requests hanging). */
  releaseAll(): void {
    for (const release of this.releases) release();
    this.holds = [];
  }

  detach(): void {
    this.releaseAll();
    this.stack.interceptor = undefined;
    this.stack.stytch.interceptor = undefined;
  }

  private async take(service: string, operation: string, phase: 'before' | 'after'): Promise<void> {
    const index = this.holds.findIndex((h) => h.service === service && h.phase === phase && h.match(operation));
    if (index < 0) return;
    const [hold] = this.holds.splice(index, 1);
    hold!.reach();
    await hold!.opened;
  }
}

/** Polls until `condition` holds: observing what the other invocation did, never waiting for a race by time. */
async function until(condition: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > end) throw new Error(`Timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

const isRotate = (op: string) => op.endsWith('.rotate');
const isStart = (op: string) => op.endsWith('.rotate_start');
const isCancel = (op: string) => op.endsWith('.rotate_cancel');
/** A lease found held: the taking write failed and the item is read to see why (the secret is already bound). */
const isLeaseWaitRead = (op: string) => op === 'GetItem';

function raceSuite(graceSeconds: number, body: (ctx: () => Ctx) => void): void {
  let stack: LocalStack;
  let bundle: Awaited<ReturnType<typeof builtBundle>> | undefined;
  beforeAll(async () => {
    const other = process.env.RACES_BUNDLE;
    if (!other) bundle = await builtBundle();
    stack = await LocalStack.start({ bundlePath: other ?? bundle!.path, graceSeconds, maxAttempts: 1, env: { STYTCH_MAX_ATTEMPTS: '2' } });
  });
  afterAll(async () => {
    await stack?.close();
    bundle?.dispose();
  });
  body(() => new Ctx(stack));
}

/** One test's world on the shared stack: its own secret and client, containers, traffic and a watch on invariant I. */
class Ctx {
  seeded!: SeededSecret;
  traffic: Traffic;
  readonly violations: string[] = [];
  private watching: NodeJS.Timeout | undefined;

  constructor(readonly stack: LocalStack) {
    this.traffic = new Traffic(stack);
  }

  async seed(kind: (typeof KINDS)[number], options: { bind?: boolean } = {}): Promise<this> {
    this.seeded = await this.stack.seedSecret({ name: `race/${randomUUID()}`, kind });
    // Rotation on, without rotating (the configuration test).
    await this.stack.sm.handle('RotateSecret', {
      SecretId: this.seeded.arn,
      RotationLambdaARN: LOCAL_LAMBDA_ARN,
      RotationRules: { ScheduleExpression: 'rate(30 days)' },
      RotateImmediately: false,
    });
    // One whole rotation binds the secret to its client, so every later table read is a lease wait.
    if (options.bind !== false) {
      await this.stack.sm.handle('RotateSecret', { SecretId: this.seeded.arn });
      expect(this.stack.sm.rotationHistory(this.seeded.arn).at(-1)?.outcome).toBe('succeeded');
    }
    return this;
  }

  /** I, checked every 2 ms for the whole race, and again at the end. */
  watch(): void {
    this.watching = setInterval(() => this.checkI('during the race'), 2);
  }

  checkI(when: string): void {
    const current = this.currentSecret();
    if (!this.stack.stytch.isAccepted(this.seeded.clientId, current)) {
      const message = `I: AWSCURRENT (…${current.slice(-4)}) is rejected by Stytch ${when}`;
      if (!this.violations.includes(message)) this.violations.push(message);
    }
  }

  async end(): Promise<void> {
    clearInterval(this.watching);
    this.traffic.detach();
    this.checkI('at the end');
  }

  currentSecret(): string {
    const snapshot = this.stack.sm.inspect(this.seeded.arn);
    const current = Object.values(snapshot.versions).find((v) => v.stages.includes('AWSCURRENT'))!;
    return (JSON.parse(current.secretString!) as { client_secret: string }).client_secret;
  }

  stagesOf(token: string): string[] {
    return this.stack.sm.inspect(this.seeded.arn).versions[token]?.stages ?? [];
  }

  begin(): string {
    const token = randomUUID();
    this.stack.sm.beginRotation(this.seeded.arn, token);
    return token;
  }

  async container(): Promise<Container> {
    return await this.stack.createContainer();
  }

  step(container: Container, step: string, token: string): Promise<void> {
    return container({ Step: step, SecretId: this.seeded.arn, ClientRequestToken: token });
  }

  /** rotate/start calls Stytch answered 200 for this client. */
  acceptedStarts(): number {
    return this.stack.stytch.requests.filter((r) => r.clientId === this.seeded.clientId && isStart(r.operation) && r.status === 200).length;
  }
}

const settle = (...runs: Array<Promise<unknown>>) => Promise.allSettled(runs);

describe('Races between overlapping invocations (VI), through the built bundle', () => {
  describe('with no overlap window (PREVIOUS_SECRET_GRACE_SECONDS=0)', () => {
    raceSuite(0, (make) => {
      it.each(KINDS)('%s: a slow rotate in finishSecret cannot promote the secret a newer rotation\'s createSecret started', async (kind) => {
        const t = await make().seed(kind);
        const [a, b] = [await t.container(), await t.container()];
        const first = t.begin();
        for (const step of ['createSecret', 'setSecret', 'testSecret']) await t.step(a, step, first);
        t.watch();
        const slowRotate = t.traffic.hold('stytch', isRotate);
        const finish = t.step(a, 'finishSecret', first);
        await slowRotate.reached;
        // AWSPENDING now sits on AWSCURRENT's version: Secrets Manager accepts a new rotate-secret.
        expect(t.stagesOf(first)).toContain('AWSCURRENT');
        const second = t.begin();
        const starts = t.acceptedStarts();
        const create = t.step(b, 'createSecret', second);
        await until(() => t.acceptedStarts() > starts || t.traffic.count('dynamodb', isLeaseWaitRead) > 0, "the newer createSecret started a secret, or waits for the lease");
        slowRotate.release();
        await settle(finish, create);
        await t.end();
        expect(t.violations).toEqual([]);
        // The newer rotation goes on from a clean state: its pending secret is Stytch's next one.
        await t.step(b, 'createSecret', second);
        expect(t.stack.stytch.clientState(t.seeded.clientId).nextClientSecretLast4).not.toBeNull();
        expect(t.stack.stytch.isAccepted(t.seeded.clientId, t.currentSecret())).toBe(true);
      });

      it.each(KINDS)('%s: two createSecrets of one token from a half-done state complete it once, and neither promotes the other\'s secret', async (kind) => {
        const t = await make().seed(kind);
        const [a, b] = [await t.container(), await t.container()];
        // Half done: AWSCURRENT moved to the new version, Stytch never completed (its next secret is AWSCURRENT).
        const first = t.begin();
        for (const step of ['createSecret', 'setSecret', 'testSecret']) await t.step(a, step, first);
        const previous = Object.entries(t.stack.sm.inspect(t.seeded.arn).versions).find(([, v]) => v.stages.includes('AWSCURRENT'))![0];
        await t.stack.sm.handle('UpdateSecretVersionStage', { SecretId: t.seeded.arn, VersionStage: 'AWSCURRENT', MoveToVersionId: first, RemoveFromVersionId: previous });
        await t.stack.sm.handle('UpdateSecretVersionStage', { SecretId: t.seeded.arn, VersionStage: 'AWSPENDING', RemoveFromVersionId: first });
        expect(t.stack.stytch.clientState(t.seeded.clientId).nextClientSecretLast4).toBe(t.currentSecret().slice(-4));

        t.watch();
        const second = t.begin();
        const slowRotate = t.traffic.hold('stytch', isRotate);
        const one = t.step(a, 'createSecret', second);
        await slowRotate.reached;
        const starts = t.acceptedStarts();
        const other = t.step(b, 'createSecret', second);
        await until(() => t.acceptedStarts() > starts || t.traffic.count('dynamodb', isLeaseWaitRead) > 0, 'the other createSecret started a secret, or waits for the lease');
        slowRotate.release();
        await settle(one, other);
        await t.end();
        expect(t.violations).toEqual([]);
        expect(t.acceptedStarts() - starts, 'IV: one accepted rotate/start for the rotation').toBe(1);
        expect(t.stagesOf(second)).toContain('AWSPENDING');
      });

      it.each(KINDS)('%s: two createSecrets of one token at once, one PutSecretValue in flight: one rotate/start, and both succeed', async (kind) => {
        const t = await make().seed(kind);
        const [a, b] = [await t.container(), await t.container()];
        t.watch();
        const token = t.begin();
        const startsBefore = t.acceptedStarts();
        const slowPut = t.traffic.hold('secretsmanager', (op) => op === 'PutSecretValue');
        const one = t.step(a, 'createSecret', token);
        await slowPut.reached;
        const other = t.step(b, 'createSecret', token);
        await until(
          () => t.acceptedStarts() > startsBefore + 1 || t.traffic.count('stytch', isCancel) > 0 || t.traffic.count('dynamodb', isLeaseWaitRead) > 0,
          'the other createSecret cancelled or started a secret, or waits for the lease',
        );
        slowPut.release();
        const results = await settle(one, other);
        await t.end();
        expect(t.violations).toEqual([]);
        expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled']);
        expect(t.acceptedStarts() - startsBefore, 'IV: one accepted rotate/start for the rotation').toBe(1);
        for (const step of ['setSecret', 'testSecret', 'finishSecret']) await t.step(a, step, token);
        expect(t.stagesOf(token)).toContain('AWSCURRENT');
        expect(t.stack.stytch.isAccepted(t.seeded.clientId, t.currentSecret())).toBe(true);
      });
    });
  });

  for (const grace of [0, 3600]) {
    describe(`a cancel against a finishSecret of the same rotation (PREVIOUS_SECRET_GRACE_SECONDS=${grace})`, () => {
      raceSuite(grace, (make) => {
        it.each(KINDS)('%s: a definitive failure never cancels a pending secret that a finishSecret is making AWSCURRENT', async (kind) => {
          const t = await make().seed(kind, { bind: true });
          const [a, b] = [await t.container(), await t.container()];
          const token = t.begin();
          await t.step(a, 'createSecret', token);
          t.watch();
          // setSecret's read of Stytch fails definitively (a 400): the failure policy cancels the rotation.
          t.stack.stytch.addFault({ mode: 'before', operation: `${kind}.get`, status: 400, times: 1 });
          const cancel = t.traffic.hold('stytch', isCancel);
          const slowRotate = t.traffic.hold('stytch', isRotate);
          const set = t.step(a, 'setSecret', token);
          await cancel.reached;
          const finish = t.step(b, 'finishSecret', token);
          await until(() => t.stagesOf(token).includes('AWSCURRENT') || t.traffic.count('dynamodb', isLeaseWaitRead) > 0, 'finishSecret moved AWSCURRENT, or waits for the lease');
          cancel.release();
          await until(() => t.stack.stytch.requests.some((r) => r.clientId === t.seeded.clientId && isCancel(r.operation)) || t.traffic.count('stytch', isCancel) === 0, 'the cancel landed');
          slowRotate.release();
          await settle(set, finish);
          await t.end();
          expect(t.violations).toEqual([]);
        });
      });
    });
  }
});

describe('The binding: whoever can write a secret\'s value cannot move the function onto another client (VII)', () => {
  raceSuite(0, (make) => {
    /** Secrets Manager's own rotation of `arn` (RotateSecret): its outcome. */
    const rotateSecret = async (t: Ctx, arn: string) => {
      await t.stack.sm.handle('RotateSecret', { SecretId: arn });
      return t.stack.sm.rotationHistory(arn).at(-1)!;
    };

    it.each(KINDS)('%s: a value pointed at another client of the project is refused before any Stytch call; that client keeps its secret', async (kind) => {
      const t = await make().seed(kind);
      const victim = await t.stack.seedSecret({ name: `victim/${randomUUID()}`, kind });
      const victimSecret = JSON.parse(t.stack.sm.inspect(victim.arn).versions[Object.keys(t.stack.sm.inspect(victim.arn).versions)[0]!]!.secretString!) as {
        client_secret: string;
      };
      const value = JSON.parse(Object.values(t.stack.sm.inspect(t.seeded.arn).versions).find((v) => v.stages.includes('AWSCURRENT'))!.secretString!) as Record<string, unknown>;
      await t.stack.sm.handle('PutSecretValue', {
        SecretId: t.seeded.arn,
        ClientRequestToken: randomUUID(),
        SecretString: JSON.stringify({ ...value, client_id: victim.clientId, client_secret: `forged-secret-${victimSecret.client_secret.slice(-4)}` }),
      });
      const before = t.stack.stytch.requests.length;
      const record = await rotateSecret(t, t.seeded.arn);
      await t.end();
      expect(record.outcome).toBe('failed');
      expect(record.attempts[0]?.steps[0]?.error).toMatch(/is bound to Stytch client .* but its value names client/);
      expect(t.stack.stytch.requests.slice(before).filter((r) => r.clientId === victim.clientId)).toEqual([]);
      expect(t.stack.stytch.isAccepted(victim.clientId, victimSecret.client_secret)).toBe(true);
      expect(t.stack.logs.some((l) => l.includes('"level":"ERROR"') && l.includes('Refused: the value names a client other than the one this secret is bound to'))).toBe(true);
    });

    it.each(KINDS)('%s: a value pointed at a client of another project (through stytch_credentials_secret_id) is refused', async (kind) => {
      const t = await make().seed(kind);
      const other = t.stack.stytch.createProject();
      const victim =
        kind === 'm2m' ? t.stack.stytch.createM2MClient(other.projectId) : t.stack.stytch.createConnectedApp(other.projectId, { clientType: 'first_party' });
      const credentials = `stytch/other-project-${randomUUID()}`;
      await t.stack.sm.handle('CreateSecret', {
        Name: credentials,
        ClientRequestToken: randomUUID(),
        SecretString: JSON.stringify({ project_id: other.projectId, secret: other.secret, base_url: t.stack.stytchUrl }),
      });
      const value = JSON.parse(Object.values(t.stack.sm.inspect(t.seeded.arn).versions).find((v) => v.stages.includes('AWSCURRENT'))!.secretString!) as Record<string, unknown>;
      await t.stack.sm.handle('PutSecretValue', {
        SecretId: t.seeded.arn,
        ClientRequestToken: randomUUID(),
        SecretString: JSON.stringify({
          ...value,
          client_id: victim.client_id,
          client_secret: `forged-secret-${victim.client_secret!.slice(-4)}`,
          stytch_credentials_secret_id: credentials,
        }),
      });
      const record = await rotateSecret(t, t.seeded.arn);
      await t.end();
      expect(record.outcome).toBe('failed');
      expect(record.attempts[0]?.steps[0]?.error).toMatch(/is bound to Stytch client .* of project .*, but its value names client .* of project project-/);
      expect(t.stack.stytch.requests.filter((r) => r.clientId === victim.client_id)).toEqual([]);
      expect(t.stack.stytch.isAccepted(victim.client_id, victim.client_secret!)).toBe(true);
    });

    it.each(KINDS)('%s: a second secret naming a client already bound to another secret is refused, the bound one keeps working', async (kind) => {
      const t = await make().seed(kind);
      const copy = await t.stack.sm.handle('CreateSecret', {
        Name: `copy/${randomUUID()}`,
        ClientRequestToken: randomUUID(),
        SecretString: JSON.stringify({ client_id: t.seeded.clientId, client_secret: t.currentSecret() }),
      });
      const arn = (copy as { ARN: string }).ARN;
      await t.stack.sm.handle('RotateSecret', { SecretId: arn, RotationLambdaARN: LOCAL_LAMBDA_ARN, RotationRules: { ScheduleExpression: 'rate(30 days)' } });
      const record = t.stack.sm.rotationHistory(arn).at(-1)!;
      await t.end();
      expect(record.outcome).toBe('failed');
      expect(record.attempts[0]?.steps[0]?.error).toMatch(/is bound to another secret .* may not rotate it/);
      expect(t.stack.stytch.isAccepted(t.seeded.clientId, t.currentSecret())).toBe(true);
      expect(t.stack.stytch.clientState(t.seeded.clientId).nextClientSecretLast4).toBeNull();
      // The credentials secret is untouched too.
      expect(Object.keys(t.stack.sm.inspect(CREDENTIALS_SECRET_NAME).versions)).toHaveLength(1);
    });
  });
});
