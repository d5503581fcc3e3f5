/**
 * A trial of the third kind: the rotated secret is a Stytch project API secret
 * (DESIGN.md §4b), in a project environment of its own, rotated through the
 * management API and proved by the probe, both through the Stytch proxy
 * (project-proxy.ts) so that their latencies and faults are this trial's.
 * The plan's overlapping invocations run as for a client (trial.ts), with an
 * outside actor beside them (plan.ts, OutsideAction): an app still using the
 * previous secret, and someone deleting the pending secret in the dashboard.
 *
 * The invariants, for this kind:
 * - I: AWSCURRENT's secret is accepted by Stytch at every effect, poll and at
 *   the end (unless the outside actor deleted that very secret);
 * - window: the previous secret stays accepted until its window ends, unless
 *   a newer rotation's createSecret started after the move;
 * - IV-starts: with no fault injected, at most one secrets.create whose
 *   answer was delivered per token;
 * - IV-settle: Secrets Manager's attempts complete every rotation, except one
 *   whose pending secret the outside actor deleted (it is given up cleanly);
 * - II-end: once settled, every secret of the project environment is held by
 *   AWSCURRENT or AWSPENDING, by AWSPREVIOUS while its window is open (up to
 *   END_SWEEPS sweeps after it, waiting out a deletion put off once), or named
 *   in the function's OrphanProjectSecret report, or, when the outside actor
 *   deleted AWSCURRENT's secret, by AWSPREVIOUS kept as possibly the only one
 *   that works and named in the sweep's ERROR; and the secrets the
 *   function did not create (the project's first secret, another team's made
 *   just before) still exist. With the window's end this is also III: the
 *   previous secret is deleted after its window and a sweep.
 */
import { randomUUID } from 'node:crypto';
import { clientKey, secretKey, type CreatedSecret, type Retirement } from '../../../functions/lib/state/table.js';
import type { CreatedProject } from '../../../infra/local/stytch/model.js';
import { type OutsideAction, type TokenName } from './plan.js';
import { nextTrialNumber, Trial } from './trial.js';

const sleep = (ms: number) => (ms > 0 ? new Promise<void>((resolve) => setTimeout(resolve, ms)) : Promise.resolve());
const l4 = (secret: string | undefined) => (secret ? `…${secret.slice(-4)}` : 'none');
/** Sweeps the end check runs at most for a previous secret whose window has ended. */
const END_SWEEPS = 3;
/** The end check waits at most this long for a deletion the sweep put off (PROJECT_SECRET_IN_USE_DEFER_SECONDS is 1 s in the fuzzer). */
const MAX_DEFER_WAIT_MS = 3_000;
/** How long an outside action waits for something to act on (a move, a stored pending secret). */
const OUTSIDE_WAIT_MS = 3_000;
/** The probe's path: an M2M client that does not exist (a 404 proves the credentials were accepted). */
const PROBE_PATH = '/v1/m2m/clients/m2m-client-test-00000000-0000-4000-8000-000000000000';

export class ProjectTrial extends Trial {
  private project!: CreatedProject;
  /** Another team's secret in the same project environment, made just before the trial: never to be deleted. */
  private otherTeam!: { secretId: string; secret: string };
  /** Secrets the outside actor deleted: a rejection of one of them is not the function's doing. */
  private readonly outsiderDeleted = new Set<string>();
  /** Versions whose pending secret the outside actor deleted. */
  private readonly pendingDeleted = new Set<string>();
  /** The project's secret ids as last seen at an effect: a new one after a create is an accepted create. */
  private seenIds = new Set<string>();
  /** Every project secret seen at Stytch during the trial, deleted since or not: the runner's leak scan looks for each (V). */
  private readonly seenSecrets = new Map<string, string>();

  /** The project secrets this trial has seen, labelled by id (never shown): for the runner's leak scan. */
  knownSecretValues(): Array<{ label: string; value: string }> {
    return [...this.seenSecrets].map(([secretId, value]) => ({ label: `project secret ${secretId} (trial seed ${this.plan.seed})`, value }));
  }

  /** What the proxy's calls name: the project id (probe) and slug (management API). */
  get projectKeys(): string[] {
    return [this.project.projectId, this.project.projectSlug];
  }

  private get envName(): string {
    return `${this.project.projectSlug}/${this.project.environmentSlug}`;
  }

  // ------------------------------------------------------------------ setup

  override async setup(): Promise<void> {
    const { stack, graceSeconds } = this.env;
    const proxy = this.env.project;
    if (!proxy) throw new Error('Test bug: a project-secret trial needs the Stytch proxy (TrialEnv.project)');
    this.project = stack.stytch.createProject();
    const projectId = this.project.projectId;
    const rotated = stack.stytch.createProjectSecret(projectId);
    this.otherTeam = stack.stytch.createProjectSecret(projectId);
    for (const secret of [this.project.secret, rotated.secret, this.otherTeam.secret]) this.known.add(secret);
    const value = {
      project_id: projectId,
      secret: rotated.secret,
      secret_id: rotated.secretId,
      project_slug: this.project.projectSlug,
      environment_slug: this.project.environmentSlug,
      base_url: proxy.proxyUrl,
    };
    const name = `fuzz/${this.plan.seed}-${nextTrialNumber()}`;
    const { ARN: arn } = (await stack.sm.handle('CreateSecret', { Name: name, ClientRequestToken: randomUUID(), SecretString: JSON.stringify(value) })) as { ARN: string };
    this.seeded = { name, arn, clientId: this.envName };
    await stack.sm.handle('RotateSecret', {
      SecretId: arn,
      ClientRequestToken: randomUUID(),
      RotationLambdaARN: this.env.attachOnlyLambdaArn,
      RotationRules: { ScheduleExpression: 'rate(30 days)' },
      RotateImmediately: false,
    });
    const v0 = this.snapshot().currentId!;
    this.versions.set(v0, { name: 'v0', order: 0 });
    const binding = { secretArn: arn, projectId, clientId: this.envName, credentialsSecretId: undefined, kind: 'project_secret' as const };
    const bind = async (retirement: Retirement | undefined, created?: CreatedSecret) => {
      const holder = `fuzz-setup-${randomUUID()}`;
      await this.env.state.acquire({ binding, bind: true, holder, what: 'fuzz setup', until: Date.now() + 60_000, now: Date.now() });
      if (created) await this.env.state.markCreated(binding, holder, created);
      await this.env.state.release(binding, holder, retirement);
    };

    const { start } = this.plan;
    if (start === 'window' || start === 'ended') {
      // A rotation P completed just now (window) or one window ago (ended): its previous secret waits for the sweep.
      const s1 = stack.stytch.createProjectSecret(projectId);
      this.known.add(s1.secret);
      const p = randomUUID();
      await stack.sm.handle('PutSecretValue', {
        SecretId: arn,
        ClientRequestToken: p,
        SecretString: JSON.stringify({ ...value, secret: s1.secret, secret_id: s1.secretId }),
        VersionStages: ['AWSCURRENT'],
      });
      this.versions.set(p, { name: 'P', order: 1 });
      const movedAt = start === 'window' ? Date.now() : Date.now() - this.graceMs - 1;
      await bind({
        dueAt: movedAt + graceSeconds * 1000,
        versionId: p,
        last4: s1.secret.slice(-4),
        previousVersionId: v0,
        previousLast4: rotated.secret.slice(-4),
        previousSecretId: rotated.secretId,
        movedAt,
      });
      this.moves.push({ at: movedAt, to: p, previous: rotated.secret, windowEnd: movedAt + this.graceMs });
    } else if (start === 'half-done') {
      // H's finishSecret moved AWSCURRENT and died before giving its lease back. It leaves what its steps wrote:
      // createSecret's record of the secret it created, and the deletion intent finishSecret's lease take wrote
      // before the move (due a window after the lease's end, which has passed). H is the rotation under way.
      const s1 = stack.stytch.createProjectSecret(projectId);
      this.known.add(s1.secret);
      const h = stack.sm.beginRotation(arn);
      await stack.sm.handle('PutSecretValue', {
        SecretId: arn,
        ClientRequestToken: h,
        SecretString: JSON.stringify({ ...value, secret: s1.secret, secret_id: s1.secretId }),
        VersionStages: ['AWSPENDING'],
      });
      await stack.sm.handle('UpdateSecretVersionStage', { SecretId: arn, VersionStage: 'AWSCURRENT', MoveToVersionId: h, RemoveFromVersionId: v0 });
      this.versions.set(h, { name: 'A', order: 1 });
      this.tokens.A = h;
      const leaseEnded = Date.now() - 1;
      await bind(
        {
          dueAt: leaseEnded + graceSeconds * 1000,
          versionId: h,
          last4: s1.secret.slice(-4),
          previousVersionId: v0,
          previousLast4: rotated.secret.slice(-4),
          previousSecretId: rotated.secretId,
          movedAt: leaseEnded,
        },
        { versionId: h, at: leaseEnded - 1_000, secretId: s1.secretId },
      );
      const movedAt = Date.now();
      this.moves.push({ at: movedAt, to: h, previous: rotated.secret, windowEnd: movedAt + this.graceMs });
    } else {
      await bind(undefined);
    }
    const after = this.snapshot();
    this.currentId = after.currentId;
    this.currentSecret = this.secretOfVersion(after.currentId);
    this.seenIds = new Set(this.secretsAtStytch().map((s) => s.secretId));
    this.closed = false;
    this.note(`setup: project secret, ${this.plan.start}; AWSCURRENT ${this.versionName(this.currentId)} (${l4(this.currentSecret)}); Stytch ${this.stytchText()}`);
    this.observe('after setup');
  }

  // ------------------------------------------------------------------ what differs from a client

  protected override accepts(secret: string): boolean {
    return this.env.stack.stytch.isProjectSecretAccepted(this.project.projectId, secret);
  }

  protected override excusedCurrent(secret: string): boolean {
    return this.outsiderDeleted.has(secret);
  }

  protected override secretOfText(text: string | undefined): string | undefined {
    if (text === undefined) return undefined;
    try {
      const value = JSON.parse(text) as { secret?: unknown };
      return typeof value.secret === 'string' ? value.secret : undefined;
    } catch {
      return undefined;
    }
  }

  protected override settleExcused(token: TokenName): boolean {
    const id = this.tokens[token];
    // Given up on once its pending secret was deleted, or unable to go on once AWSCURRENT's was.
    return (id !== undefined && this.pendingDeleted.has(id)) || [...this.outsiderDeleted].some((s) => this.moves.some((m) => m.previous === s) || this.currentSecret === s);
  }

  protected override extraLanes(): Array<Promise<unknown>> {
    return this.plan.outside.map((action) => this.outside(action));
  }

  private async outside(action: OutsideAction): Promise<void> {
    if (!(await this.until(() => (this.tokens.A !== undefined ? true : undefined)))) return;
    // From the moment there is something to act on: a previous secret (AWSCURRENT moved), or a stored pending one.
    const ready = action.what === 'usePrevious' ? () => this.moves.length > 0 : () => this.pendingSecret() !== undefined;
    const giveUpAt = performance.now() + OUTSIDE_WAIT_MS;
    while (!ready() && !this.closed && performance.now() < giveUpAt) await sleep(5);
    if (!ready()) {
      this.note(`outside: ${action.what}: nothing to act on`);
      return;
    }
    await sleep(action.at);
    if (this.closed) return;
    const { stack } = this.env;
    if (action.what === 'usePrevious') {
      const move = this.moves[this.moves.length - 1];
      const secret = move?.previous ?? this.currentSecret;
      if (secret === undefined) return;
      // An app that never re-read the secret: a request with it straight to Stytch (Stytch records the use).
      const answer = await fetch(stack.stytchUrl + PROBE_PATH, {
        headers: { authorization: `Basic ${Buffer.from(`${this.project.projectId}:${secret}`).toString('base64')}` },
      }).catch(() => undefined);
      this.note(`outside: an app used ${move ? 'the previous' : 'the current'} secret ${l4(secret)}: ${answer?.status ?? 'no answer'}`);
      return;
    }
    const pending = this.pendingId();
    const secret = this.pendingSecret();
    const held = secret === undefined ? undefined : stack.stytch.projectSecretValues(this.project.projectId).find((s) => s.secret === secret);
    if (pending === undefined || held === undefined) {
      this.note('outside: deletePending: nothing pending to delete any more');
      return;
    }
    this.outsiderDeleted.add(held.secret);
    this.pendingDeleted.add(pending);
    stack.stytch.deleteProjectSecret(this.project.projectId, held.secretId);
    this.note(`outside: deleted the pending secret ${held.secretId} (${l4(held.secret)}) of ${this.versionName(pending)} in the dashboard`);
    this.observe('after the outside deletion');
  }

  /** The secret the AWSPENDING version (not AWSCURRENT) holds, once it has a value. */
  private pendingSecret(): string | undefined {
    const pending = this.pendingId();
    return pending === undefined ? undefined : this.secretOfText(this.env.stack.sm.inspect(this.seeded.arn).versions[pending]?.secretString);
  }

  override afterStytchEffect(operation: string, answerLost: boolean): void {
    if (this.closed) return;
    const ids = new Set(this.secretsAtStytch().map((s) => s.secretId));
    const added = [...ids].filter((id) => !this.seenIds.has(id));
    const removed = [...this.seenIds].filter((id) => !ids.has(id));
    if (operation === 'secrets.create' && added.length > 0) {
      // Under the lease, the version pending now is the one whose createSecret made it.
      const key = this.pendingId() ?? 'no pending version';
      if (!answerLost) this.starts.set(key, (this.starts.get(key) ?? 0) + added.length);
    }
    if (added.length > 0 || removed.length > 0) {
      this.note(`Stytch ${operation}${answerLost ? ' (answer lost)' : ''}: ${added.map((id) => `+${id}`).concat(removed.map((id) => `-${id}`)).join(' ')}; now ${this.stytchText()}`);
    } else if (answerLost) {
      this.note(`Stytch ${operation}: answer lost`);
    }
    this.seenIds = ids;
    this.observe(`after Stytch ${operation}`);
  }

  // ------------------------------------------------------------------ end checks

  /** II (and III) once settled: see the file comment. */
  protected override async checkHeld(): Promise<void> {
    for (let sweeps = 0; ; sweeps++) {
      const snapshot = this.snapshot();
      const holding = (stage: string) =>
        Object.values(snapshot.versions)
          .filter((v) => v.stages.includes(stage))
          .map((v) => this.secretOfText(v.secretString));
      const [current, pending, previous] = [holding('AWSCURRENT'), holding('AWSPENDING'), holding('AWSPREVIOUS')];
      const record = await this.retirementRecord();
      const move = this.moves[this.moves.length - 1];
      const now = Date.now();
      const problems: string[] = [];
      let sweepMayRetire = false;
      let waitUntil = 0;
      const atStytch = this.env.stack.stytch.projectSecretValues(this.project.projectId);
      const currentGone = current.length > 0 && current.every((secret) => secret !== undefined && this.outsiderDeleted.has(secret));
      for (const { what, secretId } of [
        { what: "the project's first secret", secretId: this.project.secretId },
        { what: "another team's secret", secretId: this.otherTeam.secretId },
      ]) {
        if (!atStytch.some((s) => s.secretId === secretId)) problems.push(`${what} ${secretId} was deleted; the function never created it`);
      }
      for (const { secretId, secret } of atStytch) {
        if (secretId === this.project.secretId || secretId === this.otherTeam.secretId) continue;
        if (current.includes(secret) || pending.includes(secret)) continue;
        if (this.env.project!.reported(secretId)) continue; // II: reported as an orphan, never deleted by guesswork
        if (!previous.includes(secret)) {
          problems.push(`Stytch has the project secret ${secretId} (${l4(secret)}), which no label holds and no OrphanProjectSecret report names`);
          continue;
        }
        const ours = move && move.previous === secret ? move.windowEnd : -Infinity;
        const recorded = record?.previousSecretId === secretId ? record.dueAt : -Infinity;
        if (now < Math.max(ours, recorded)) {
          // Its window is open (or its deletion was put off once: an app still used it).
          if (recorded > ours && record?.deferred && sweeps < END_SWEEPS) {
            waitUntil = Math.max(waitUntil, Math.min(recorded, now + MAX_DEFER_WAIT_MS));
            sweepMayRetire = true;
          }
          continue;
        }
        if (record?.previousSecretId === secretId && sweeps < END_SWEEPS) {
          sweepMayRetire = true;
          continue;
        }
        // II: the outside actor deleted AWSCURRENT's secret after the move was decided, so the previous one may be
        // the only secret that works. The sweep keeps it, and must say so at ERROR, naming it.
        if (currentGone && this.env.project!.keptReported(secretId)) continue;
        problems.push(
          `Stytch still has the AWSPREVIOUS secret ${secretId} (${l4(secret)}), whose window ended ${now - Math.max(ours, recorded)} ms ago` +
            (record?.previousSecretId === secretId ? ` (${sweeps} sweeps since did not delete it)` : ', with no deletion recorded for it'),
        );
      }
      if (problems.length > 0) {
        this.violate('II-end', `${problems.join('; ')} (Stytch ${this.stytchText()})`);
        return;
      }
      if (!sweepMayRetire) return;
      await sleep(waitUntil - Date.now() + 5);
      await this.sweep('end check: a window has ended');
    }
  }

  protected override async retirementRecord(): Promise<Retirement | undefined> {
    return (await this.env.state.readClient({ projectId: this.project.projectId, clientId: this.envName }))?.retirement;
  }

  override stateKeys(): string[] {
    return [clientKey({ projectId: this.project.projectId, clientId: this.envName }), secretKey(this.seeded.arn)];
  }

  protected override stytchText(): string {
    const labels = (secret: string) => {
      const stages = Object.values(this.env.stack.sm.inspect(this.seeded.arn).versions)
        .filter((v) => this.secretOfText(v.secretString) === secret)
        .flatMap((v) => v.stages);
      return stages.length > 0 ? `(${stages.join(' ')})` : '';
    };
    return `secrets ${this.secretsAtStytch()
      .map((s) => `${s.secretId.slice(-6)} ${l4(s.secret)}${labels(s.secret)}`)
      .join(', ')}`;
  }

  private secretsAtStytch(): Array<{ secretId: string; secret: string }> {
    const secrets = this.env.stack.stytch.projectSecretValues(this.project.projectId);
    for (const { secretId, secret } of secrets) {
      if (this.seenSecrets.has(secretId)) continue;
      this.seenSecrets.set(secretId, secret);
      this.known.add(secret);
    }
    return secrets;
  }
}
