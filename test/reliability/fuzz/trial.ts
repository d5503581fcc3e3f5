/**
 * One trial: a freshly seeded secret and Stytch client put in the plan's
 * starting state, then the plan's overlapping invocations of the BUILT
 * function (Secrets Manager's own attempts with their reattempts, duplicates,
 * strays, sweeps, the CLI's retire), then the end checks once everything has
 * settled.
 *
 * The starting state is put in place directly, as the function would have
 * left it (the emulators' outside actions for Stytch and Secrets Manager, the
 * function's own StateTable code for the binding and the due retirement):
 * setting it up through invocations would cost as much as the trial itself.
 *
 * Invariants (DESIGN.md §3), checked at every effect on the trial's secret or
 * client (the network tells the trial at once), by the runner's poller every
 * few ms, and at the end:
 * - I: AWSCURRENT is accepted by Stytch;
 * - window: the previous secret (AWSCURRENT before the last move) stays
 *   accepted until its window ends, unless a newer rotation's createSecret
 *   started after that move (Stytch holds one next secret only) or the
 *   operator's retire ran (retiring early is what it is for);
 * - IV-starts: on a trial with no fault injected, at most one accepted
 *   rotate/start (200 answer delivered) per token;
 * - IV-settle: Secrets Manager's attempts complete every rotation;
 * - II-end: once settled, every secret Stytch accepts is held by Secrets
 *   Manager: AWSCURRENT, AWSPENDING, or AWSPREVIOUS while its window is open
 *   (once it has ended, a sweep is run first: the function may retire it up
 *   to one sweep after the window).
 * The runner adds V (no secret in any log line or error).
 *
 * Secret values never leave this file except as last fours.
 */
import { randomUUID } from 'node:crypto';
import { scheduledEvent, type LocalStack, type SeededSecret } from '../../../infra/local/stack.js';
import { clientKey, secretKey, type Retirement, type StateTable } from '../../../functions/lib/state/table.js';
import { Chaos, type NetworkParty, type Service } from './network.js';
import type { ContainerPool } from './pool.js';
import { describePlan, type RotationPlan, type Step, type Stray, type TokenName, type TrialPlan } from './plan.js';
import { Rng } from './random.js';
import { secretOf } from '../support/invariants.js';

export type ViolationKind = 'I' | 'window' | 'IV-starts' | 'IV-settle' | 'II-end' | 'V';

export interface Violation {
  kind: ViolationKind;
  message: string;
}

export interface TrialEnv {
  stack: LocalStack;
  pool: ContainerPool;
  graceSeconds: number;
  /** The function's own state table code, for putting a starting state in place as the function would leave it. */
  state: StateTable;
  /** Rotation attached to a Lambda that does nothing: the configuration test is not what is fuzzed here. */
  attachOnlyLambdaArn: string;
  faultRate: number;
  maxFaults: number;
  /** The operator CLI's `retire --yes` for a secret, if the command exists. */
  cliRetire?: (secretName: string) => Promise<{ code: number; output: string }>;
  /**
   * For project-secret trials: the Stytch proxy their calls go through, the secrets the function reported as
   * orphans, and the previous secrets the sweep reported keeping because AWSCURRENT's was gone at Stytch.
   */
  project?: { proxyUrl: string; reported: (secretId: string) => boolean; keptReported: (secretId: string) => boolean };
}

export interface TrialResult {
  plan: TrialPlan;
  violations: Violation[];
  faults: string[];
  invocations: number;
  failedInvocations: number;
  ms: number;
}

/** Secrets Manager's attempts per token before the trial gives up on it (a violation: IV-settle). */
const MAX_ATTEMPTS = 6;
/** No new attempt starts after this long: a trial whose client stays locked ends and reports it. */
const ATTEMPTS_FOR_MS = 20_000;
/** Sweeps the end check runs at most for a previous secret whose window has ended. */
const END_SWEEPS = 3;

interface Move {
  at: number;
  to: string;
  /** The secret that was AWSCURRENT before the move; undefined for the first value. */
  previous: string | undefined;
  windowEnd: number;
}

interface VersionInfo {
  name: string;
  /** Age order: a higher order is a newer rotation. */
  order: number;
}

const sleep = (ms: number) => (ms > 0 ? new Promise<void>((resolve) => setTimeout(resolve, ms)) : Promise.resolve());
const l4 = (secret: string | null | undefined) => (secret ? `…${secret.slice(-4)}` : 'none');

let trialCount = 0;
/** A unique number for each trial's secret name (fuzz/<seed>-<n>). */
export const nextTrialNumber = (): number => ++trialCount;

export class Trial implements NetworkParty {
  readonly chaos: Chaos;
  readonly violations: Violation[] = [];
  protected readonly repeats = new Map<ViolationKind, number>();
  protected readonly timeline: string[] = [];
  protected readonly rng: Rng;
  protected readonly started = performance.now();
  protected readonly graceMs: number;
  protected seeded!: Pick<SeededSecret, 'name' | 'arn' | 'clientId'>;
  protected readonly versions = new Map<string, VersionInfo>();
  protected readonly tokens: Partial<Record<TokenName, string>> = {};
  protected readonly completed = new Set<TokenName>();
  protected currentId: string | undefined;
  protected currentSecret: string | undefined;
  protected readonly moves: Move[] = [];
  /** createSecret invocations: the order of their token and when they started (Date.now). */
  protected readonly createStarts: Array<{ order: number; at: number }> = [];
  /**
   * The operator's `retire --yes` runs (Date.now): retiring early is what it is for. One that was
   * still running when AWSCURRENT moved may retire the new previous secret (it reads the state under
   * the lease), so it counts for any move before its end.
   */
  protected readonly retireRuns: Array<{ end: number | undefined }> = [];
  /** Stytch's state as last seen at an effect: success of rotate/start is a next secret appearing. */
  protected stytchSeen: { current: string | null; next: string | null } = { current: null, next: null };
  /** Accepted rotate/start calls whose answer was delivered, by the version that was pending. */
  protected readonly starts = new Map<string, number>();
  protected readonly background: Array<Promise<unknown>> = [];
  protected readonly waiters: Array<{ ready: () => boolean | undefined; resolve: (ok: boolean) => void }> = [];
  protected invocations = 0;
  protected failedInvocations = 0;
  protected closed = true;
  /** Every secret value the trial has seen, to redact from anything it prints. */
  protected readonly known = new Set<string>();
  /** The client_secret of each version that has a value. */
  protected readonly secrets = new Map<string, string | undefined>();

  constructor(
    readonly plan: TrialPlan,
    protected readonly env: TrialEnv,
  ) {
    this.rng = new Rng(plan.seed).fork('trial');
    this.graceMs = env.graceSeconds * 1000;
    this.chaos = new Chaos(new Rng(plan.seed).fork('chaos'), plan.faulty, {
      faultRate: env.faultRate,
      maxFaults: env.maxFaults,
    });
  }

  get names(): { arn: string; name: string; clientId: string } {
    return { arn: this.seeded.arn, name: this.seeded.name, clientId: this.seeded.clientId };
  }

  get clientId(): string {
    return this.seeded.clientId;
  }

  // ------------------------------------------------------------------ setup

  /** Seeds the secret and client and puts them in the starting state. Runs before the network knows the trial: no chaos. */
  async setup(projectId: string): Promise<void> {
    const { stack, graceSeconds } = this.env;
    this.seeded = await stack.seedSecret({ name: `fuzz/${this.plan.seed}-${nextTrialNumber()}`, kind: this.plan.kind === 'm2m' ? 'm2m' : 'connected_app' });
    const { arn, clientId } = this.seeded;
    this.known.add(stack.project.secret);
    await stack.sm.handle('RotateSecret', {
      SecretId: arn,
      ClientRequestToken: randomUUID(),
      RotationLambdaARN: this.env.attachOnlyLambdaArn,
      RotationRules: { ScheduleExpression: 'rate(30 days)' },
      RotateImmediately: false,
    });
    const initial = this.snapshot();
    const v0 = initial.currentId!;
    this.versions.set(v0, { name: 'v0', order: 0 });
    const value = JSON.parse(initial.versions[v0]!.secretString!) as Record<string, unknown>;
    const s0 = value.client_secret as string;
    const binding = { secretArn: arn, projectId, clientId, credentialsSecretId: undefined, kind: this.plan.kind };
    const bind = async (retirement: Retirement | undefined) => {
      const holder = `fuzz-setup-${randomUUID()}`;
      await this.env.state.acquire({ binding, bind: true, holder, what: 'fuzz setup', until: Date.now() + 60_000, now: Date.now() });
      await this.env.state.release(binding, holder, retirement);
    };

    const { start } = this.plan;
    if (start === 'window' || start === 'ended') {
      // A rotation P completed just now (window) or one window ago (ended).
      const s1 = stack.stytch.adminRotateStart(clientId);
      const p = randomUUID();
      await stack.sm.handle('PutSecretValue', { SecretId: arn, ClientRequestToken: p, SecretString: JSON.stringify({ ...value, client_secret: s1 }), VersionStages: ['AWSCURRENT'] });
      this.versions.set(p, { name: 'P', order: 1 });
      const movedAt = start === 'window' ? Date.now() : Date.now() - this.graceMs - 1;
      if (start === 'ended' && graceSeconds === 0) stack.stytch.adminRotate(clientId); // a window of 0 retires in finishSecret
      const retirement =
        graceSeconds > 0 ? { dueAt: movedAt + this.graceMs, versionId: p, last4: s1.slice(-4), previousVersionId: v0, previousLast4: s0.slice(-4) } : undefined;
      await bind(retirement);
      this.moves.push({ at: movedAt, to: p, previous: s0, windowEnd: movedAt + this.graceMs });
    } else if (start === 'half-done') {
      // H's finishSecret moved AWSCURRENT and ended before completing or recording anything: H is the rotation under way.
      const s1 = stack.stytch.adminRotateStart(clientId);
      const h = stack.sm.beginRotation(arn);
      await stack.sm.handle('PutSecretValue', { SecretId: arn, ClientRequestToken: h, SecretString: JSON.stringify({ ...value, client_secret: s1 }), VersionStages: ['AWSPENDING'] });
      await stack.sm.handle('UpdateSecretVersionStage', { SecretId: arn, VersionStage: 'AWSCURRENT', MoveToVersionId: h, RemoveFromVersionId: v0 });
      this.versions.set(h, { name: 'A', order: 1 });
      this.tokens.A = h;
      await bind(undefined);
      const movedAt = Date.now();
      this.moves.push({ at: movedAt, to: h, previous: s0, windowEnd: movedAt + this.graceMs });
    }
    const after = this.snapshot();
    this.currentId = after.currentId;
    this.currentSecret = this.secretOfVersion(after.currentId);
    const state = stack.stytch.clientState(clientId);
    this.stytchSeen = { current: state.clientSecretLast4, next: state.nextClientSecretLast4 };
    this.closed = false;
    this.note(`setup: ${this.plan.start}; AWSCURRENT ${this.versionName(this.currentId)} (${l4(this.currentSecret)}); Stytch ${this.stytchText()}`);
    this.observe('after setup');
  }

  // ------------------------------------------------------------------ play

  async play(): Promise<void> {
    const lanes: Array<Promise<unknown>> = [];
    if (!this.tokens.A) this.begin('A');
    const [planA, planB] = this.plan.rotations as [RotationPlan, RotationPlan | undefined];
    lanes.push(
      this.drive(planA).then((ok) => {
        // B waits for A's version to become AWSCURRENT; if it never does, B never starts.
        if (!ok) this.settleWaiters();
      }),
    );
    for (const stray of this.plan.strays) lanes.push(this.stray(stray));
    for (const at of this.plan.sweeps) lanes.push(sleep(at).then(() => this.sweep('scheduled')));
    for (const at of this.plan.retires) lanes.push(sleep(at).then(() => this.retire()));
    if (planB) lanes.push(this.rotationB(planB));
    lanes.push(...this.extraLanes());
    await Promise.all(lanes);
    this.settleWaiters();
    // Duplicates run on after Secrets Manager's own attempt moved on; everything must have ended before the end checks.
    while (this.background.length > 0) await Promise.all(this.background.splice(0));
  }

  protected begin(token: TokenName): string {
    const id = this.env.stack.sm.beginRotation(this.seeded.arn);
    this.tokens[token] = id;
    this.versions.set(id, { name: token, order: token === 'A' ? 2 : 3 });
    this.note(`RotateSecret labelled ${token} AWSPENDING`);
    this.wake();
    return id;
  }

  /** Secrets Manager's attempts for one token: its steps in order, reattempted from createSecret after a failure. */
  protected async drive(r: RotationPlan): Promise<boolean> {
    const token = this.tokens[r.token]!;
    const deadline = performance.now() + ATTEMPTS_FOR_MS;
    for (let attempt = 1; attempt <= MAX_ATTEMPTS && performance.now() < deadline; attempt++) {
      if (attempt > 1 && !this.labelled(token, 'AWSPENDING')) {
        // Secrets Manager reattempts only the version labelled AWSPENDING. It loses the label when a newer
        // RotateSecret starts (A's rotation is then over if A became AWSCURRENT) or when the function gives up on it.
        if (this.becameCurrent(token)) {
          this.completed.add(r.token);
          return true;
        }
        this.note(`${r.token} is no longer labelled AWSPENDING: Secrets Manager abandons its rotation`);
        return false;
      }
      let ok = true;
      for (const step of r.steps) {
        if (attempt === 1 && r.duplicates.includes(step)) this.background.push(this.invoke(r.token, step, 'duplicate'));
        ok = await this.invoke(r.token, step, `attempt ${attempt}`);
        if (ok && step === 'finishSecret' && !this.becameCurrent(token)) {
          ok = false;
          this.note(`${r.token}.finishSecret returned but ${r.token} never became AWSCURRENT: Secrets Manager fails the attempt`);
        }
        if (!ok) break;
      }
      if (ok) {
        this.completed.add(r.token);
        if (r.steps.includes('finishSecret')) await this.afterSuccess(token);
        return true;
      }
      await sleep(this.rng.int(0, 30));
    }
    return false;
  }

  protected labelled(token: string, stage: string): boolean {
    return this.env.stack.sm.inspect(this.seeded.arn).versions[token]?.stages.includes(stage) ?? false;
  }

  protected becameCurrent(token: string): boolean {
    return this.currentId === token || this.moves.some((m) => m.to === token);
  }

  /** What Secrets Manager does once a rotation succeeded: AWSPENDING leaves the version, now AWSCURRENT. */
  protected async afterSuccess(token: string): Promise<void> {
    const { stack } = this.env;
    if (!stack.sm.inspect(this.seeded.arn).versions[token]?.stages.includes('AWSPENDING')) return;
    await stack.sm.handle('UpdateSecretVersionStage', { SecretId: this.seeded.arn, VersionStage: 'AWSPENDING', RemoveFromVersionId: token });
  }

  protected async rotationB(r: RotationPlan): Promise<void> {
    try {
      if (!(await this.until(() => (this.tokens.A !== undefined && this.currentId === this.tokens.A ? true : undefined)))) return;
      await sleep(r.beginDelay);
      try {
        this.begin('B');
      } catch (error) {
        this.note(`RotateSecret for B refused: ${(error as Error).message}`);
        return;
      }
      await this.drive(r);
    } finally {
      // B's strays wait for B's label: if B never got it, they never run.
      if (this.tokens.B === undefined) this.settleWaiters();
    }
  }

  protected async stray(stray: Stray): Promise<void> {
    if (!(await this.until(() => (this.tokens[stray.token] !== undefined ? true : undefined)))) return;
    await sleep(stray.at);
    await this.invoke(stray.token, stray.step, 'stray');
  }

  /** Resolves true once `ready` says so, false if the trial's lanes end first. */
  protected until(ready: () => boolean | undefined): Promise<boolean> {
    if (ready()) return Promise.resolve(true);
    return new Promise((resolve) => this.waiters.push({ ready, resolve }));
  }

  protected wake(): void {
    for (const waiter of this.waiters.splice(0)) {
      if (waiter.ready()) waiter.resolve(true);
      else this.waiters.push(waiter);
    }
  }

  protected settleWaiters(): void {
    this.wake();
    for (const waiter of this.waiters.splice(0)) waiter.resolve(false);
  }

  protected async invoke(token: TokenName, step: Step, why: string): Promise<boolean> {
    const id = this.tokens[token]!;
    const label = `${token}.${step}#${++this.invocations} (${why})`;
    if (step === 'createSecret') this.createStarts.push({ order: this.versions.get(id)!.order, at: Date.now() });
    this.note(`${label} starts`);
    try {
      await this.env.pool.run({ Step: step, SecretId: this.seeded.arn, ClientRequestToken: id }, this.seeded.arn);
      this.note(`${label} ok`);
      return true;
    } catch (error) {
      this.failedInvocations++;
      this.note(`${label} failed: ${(error as Error).message}`);
      return false;
    }
  }

  protected async sweep(why: string): Promise<void> {
    const label = `sweep#${++this.invocations} (${why})`;
    this.note(`${label} starts`);
    try {
      await this.env.pool.run(scheduledEvent());
      this.note(`${label} ok`);
    } catch (error) {
      this.failedInvocations++;
      this.note(`${label} failed: ${(error as Error).message}`);
    }
  }

  protected async retire(): Promise<void> {
    if (!this.env.cliRetire) return;
    const label = `cli retire --yes #${++this.invocations}`;
    const run: { end: number | undefined } = { end: undefined };
    this.retireRuns.push(run);
    this.note(`${label} starts`);
    let code: number;
    let output: string;
    try {
      ({ code, output } = await this.env.cliRetire(this.seeded.name));
    } catch (error) {
      ({ code, output } = { code: -1, output: `threw ${(error as Error).message}` });
    }
    run.end = Date.now();
    this.note(`${label} exit ${code}: ${output.split('\n')[0] ?? ''}`);
    const leaked = [...this.known].filter((secret) => output.includes(secret));
    if (leaked.length > 0) this.violate('V', `the CLI's retire printed ${leaked.length} secret value(s): ${leaked.map(l4).join(', ')}`);
  }

  // ------------------------------------------------------------------ invariants at every effect

  afterEffect(service: Service, operation: string): void {
    if (service === 'secretsmanager') this.observe(`after Secrets Manager ${operation}`);
  }

  afterStytchEffect(operation: string, answerLost: boolean): void {
    if (this.closed) return;
    const state = this.env.stack.stytch.clientState(this.seeded.clientId);
    const seen = { current: state.clientSecretLast4, next: state.nextClientSecretLast4 };
    if (seen.current !== this.stytchSeen.current || seen.next !== this.stytchSeen.next) {
      const action = operation.slice(operation.indexOf('.') + 1);
      if (action === 'rotate_start' && this.stytchSeen.next === null && seen.next !== null) {
        // An accepted rotate/start: under the lease, the version pending now is the one whose createSecret made it.
        const pending = this.pendingId();
        const key = pending ?? 'no pending version';
        if (!answerLost) this.starts.set(key, (this.starts.get(key) ?? 0) + 1);
      }
      this.stytchSeen = seen;
      this.note(`Stytch ${action}${answerLost ? ' (answer lost)' : ''}: now ${this.stytchText()}`);
    } else if (answerLost) {
      this.note(`Stytch ${operation}: answer lost`);
    }
    this.observe(`after Stytch ${operation}`);
  }

  /** I and the window, now. */
  observe(where: string): void {
    if (this.closed) return;
    const snapshot = this.snapshot();
    if (snapshot.currentId !== this.currentId) {
      const now = Date.now();
      const previous = this.currentSecret;
      this.currentId = snapshot.currentId;
      this.currentSecret = this.secretOfVersion(snapshot.currentId);
      this.moves.push({ at: now, to: this.currentId!, previous, windowEnd: now + this.graceMs });
      this.note(`AWSCURRENT moved to ${this.versionName(this.currentId)} (${l4(this.currentSecret)}); previous ${l4(previous)}`);
      this.wake();
    }
    if (this.currentSecret === undefined || (!this.accepts(this.currentSecret) && !this.excusedCurrent(this.currentSecret))) {
      this.violate('I', `${where}: AWSCURRENT (${this.versionName(this.currentId)}, ${l4(this.currentSecret)}) is not accepted by Stytch (${this.stytchText()})`);
    }
    const move = this.moves[this.moves.length - 1];
    const now = Date.now();
    if (move?.previous !== undefined && now < move.windowEnd && !this.mayRetireEarly(move) && !this.accepts(move.previous)) {
      this.violate(
        'window',
        `${where}: the previous secret (${l4(move.previous)}) was retired ${move.windowEnd - now} ms before its window ends ` +
          `(AWSCURRENT moved to ${this.versionName(move.to)} ${now - move.at} ms ago); neither a newer rotation's createSecret nor the CLI's retire started since (Stytch ${this.stytchText()})`,
      );
    }
  }

  /** Whether Stytch accepts this secret now (for a client: as its current or next secret). */
  protected accepts(secret: string): boolean {
    return this.env.stack.stytch.isAccepted(this.seeded.clientId, secret);
  }

  /** A secret an outside actor broke on purpose: its rejection is not the function's doing. */
  protected excusedCurrent(_secret: string): boolean {
    return false;
  }

  /** The rotated secret a version's value holds. */
  protected secretOfText(text: string | undefined): string | undefined {
    return secretOf(text);
  }

  /** Lanes a kind of trial adds to the plan's (an outside actor's actions). */
  protected extraLanes(): Array<Promise<unknown>> {
    return [];
  }

  /** A rotation an outside actor ended on purpose (Secrets Manager abandons it once AWSPENDING is removed). */
  protected settleExcused(_token: TokenName): boolean {
    return false;
  }

  /** Stytch holds one next secret: a newer rotation's createSecret that started after the move may retire the previous one. */
  protected mayRetireEarly(move: Move): boolean {
    const order = this.versions.get(move.to)?.order ?? 0;
    return this.createStarts.some((c) => c.order > order && c.at >= move.at) || this.retireRuns.some((run) => run.end === undefined || run.end >= move.at);
  }

  protected violate(kind: ViolationKind, message: string): void {
    const seen = this.repeats.get(kind) ?? 0;
    this.repeats.set(kind, seen + 1);
    if (seen === 0) {
      this.violations.push({ kind, message });
      this.note(`VIOLATION ${kind}: ${message}`);
    }
  }

  // ------------------------------------------------------------------ end checks

  async endChecks(): Promise<void> {
    this.chaos.enabled = false;
    this.observe('at the end');
    for (const r of this.plan.rotations) {
      const begun = this.tokens[r.token] !== undefined;
      if (r.token === 'B' && !begun && !this.completed.has('A')) continue; // reported for A
      if (!this.completed.has(r.token) && !this.settleExcused(r.token)) {
        this.violate('IV-settle', `rotation ${r.token} (${r.steps.join(' → ')}) did not complete within ${MAX_ATTEMPTS} attempts of Secrets Manager`);
      }
    }
    if (this.chaos.injected.length === 0) {
      for (const [version, count] of this.starts) {
        if (count > 1) this.violate('IV-starts', `${count} accepted rotate/start calls (answers delivered) for ${this.versionName(version)}, with no fault injected`);
      }
    }
    await this.checkHeld();
    this.observe('after the end checks');
    this.closed = true;
  }

  /** II once settled: every secret Stytch accepts is AWSCURRENT, AWSPENDING, or AWSPREVIOUS while its window is open. */
  protected async checkHeld(): Promise<void> {
    for (let sweeps = 0; ; sweeps++) {
      const { stack } = this.env;
      const state = stack.stytch.clientState(this.seeded.clientId);
      const snapshot = this.snapshot();
      const holding = (stage: string) =>
        Object.values(snapshot.versions)
          .filter((v) => v.stages.includes(stage))
          .map((v) => secretOf(v.secretString)?.slice(-4));
      const [current, pending, previous] = [holding('AWSCURRENT'), holding('AWSPENDING'), holding('AWSPREVIOUS')];
      const record = await this.retirementRecord();
      const move = this.moves[this.moves.length - 1];
      const now = Date.now();
      let sweepMayRetire = false;
      const problems: string[] = [];
      for (const accepted of [state.clientSecretLast4, state.nextClientSecretLast4]) {
        if (accepted === null || current.includes(accepted) || pending.includes(accepted)) continue;
        if (!previous.includes(accepted)) {
          problems.push(`Stytch accepts …${accepted}, which Secrets Manager holds under no label`);
          continue;
        }
        const ours = move && move.previous?.slice(-4) === accepted ? move.windowEnd : -Infinity;
        const recorded = record?.previousLast4 === accepted ? record.dueAt : -Infinity;
        if (now < Math.max(ours, recorded)) continue; // its window is open
        if (record?.previousLast4 === accepted && sweeps < END_SWEEPS) {
          sweepMayRetire = true;
          continue;
        }
        problems.push(
          `Stytch still accepts the AWSPREVIOUS secret …${accepted}, whose window ended ${now - Math.max(ours, recorded)} ms ago` +
            (record?.previousLast4 === accepted ? ` (${sweeps} sweeps since did not retire it)` : ', with no retirement recorded for it'),
        );
      }
      if (problems.length > 0) {
        const four = (last4: string | undefined) => (last4 === undefined ? 'none' : `…${last4}`);
        this.violate('II-end', `${problems.join('; ')} (Stytch ${this.stytchText()}; AWSCURRENT ${four(current[0])}, AWSPENDING ${four(pending[0])}, AWSPREVIOUS ${four(previous[0])})`);
        return;
      }
      if (!sweepMayRetire) return;
      await this.sweep('end check: a window has ended');
    }
  }

  protected async retirementRecord(): Promise<Retirement | undefined> {
    return (await this.env.state.readClient({ projectId: this.env.stack.project.projectId, clientId: this.seeded.clientId }))?.retirement;
  }

  /** The trial's items in the state table, for the runner to remove once the trial is over. */
  stateKeys(): string[] {
    return [clientKey({ projectId: this.env.stack.project.projectId, clientId: this.seeded.clientId }), secretKey(this.seeded.arn)];
  }

  // ------------------------------------------------------------------ the whole trial

  async run(projectId: string, around: { register: () => void; unregister: () => void }): Promise<TrialResult> {
    await this.setup(projectId);
    around.register();
    try {
      await this.play();
      await this.endChecks();
    } finally {
      this.closed = true;
      around.unregister();
    }
    return {
      plan: this.plan,
      violations: this.violations,
      faults: this.chaos.injected,
      invocations: this.invocations,
      failedInvocations: this.failedInvocations,
      ms: performance.now() - this.started,
    };
  }

  /** The plan, the faults and what happened, with every secret value the trial saw reduced to its last four. */
  report(): string {
    const lines = [
      describePlan(this.plan),
      `faults: ${this.chaos.injected.join('; ') || 'none'}`,
      'what happened (ms since the trial started):',
      ...this.timeline.slice(0, 150).map((line) => `  ${line}`),
    ];
    if (this.timeline.length > 150) lines.push(`  … ${this.timeline.length - 150} more`);
    return this.redact(lines.join('\n'));
  }

  protected redact(text: string): string {
    let out = text;
    for (const secret of this.known) out = out.split(secret).join(`…${secret.slice(-4)}`);
    return out;
  }

  // ------------------------------------------------------------------ reading the state

  protected snapshot(): { currentId: string | undefined; versions: Record<string, { stages: string[]; secretString?: string }> } {
    const snapshot = this.env.stack.sm.inspect(this.seeded.arn);
    let currentId: string | undefined;
    for (const [id, version] of Object.entries(snapshot.versions)) {
      if (version.stages.includes('AWSCURRENT')) currentId = id;
      // A version's value never changes once it has one: parse it once.
      if (version.secretString !== undefined && !this.secrets.has(id)) {
        const secret = this.secretOfText(version.secretString);
        this.secrets.set(id, secret);
        if (secret !== undefined) this.known.add(secret);
      }
    }
    return { currentId, versions: snapshot.versions };
  }

  protected secretOfVersion(id: string | undefined): string | undefined {
    return id === undefined ? undefined : this.secrets.get(id);
  }

  protected pendingId(): string | undefined {
    const { versions } = this.env.stack.sm.inspect(this.seeded.arn);
    return Object.entries(versions).find(([, v]) => v.stages.includes('AWSPENDING') && !v.stages.includes('AWSCURRENT'))?.[0];
  }

  protected versionName(id: string | undefined): string {
    if (id === undefined) return 'none';
    return this.versions.get(id)?.name ?? `version ${id.slice(0, 8)}`;
  }

  protected stytchText(): string {
    const state = this.env.stack.stytch.clientState(this.seeded.clientId);
    const four = (last4: string | null) => (last4 === null ? 'none' : `…${last4}`);
    return `current ${four(state.clientSecretLast4)}, next ${four(state.nextClientSecretLast4)}`;
  }

  protected note(text: string): void {
    this.timeline.push(`+${Math.round(performance.now() - this.started)} ${text}`);
  }
}
