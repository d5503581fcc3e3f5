/**
 * recover's decisions one by one: the check that the client's lease still
 * covers what AWSCURRENT names (VII), the "someone got there first" answers it
 * tolerates, and, in process against the World's emulators through the real
 * SDK pipeline, each action's fresh check right before it acts (VI, I): what
 * it prints, what it changes at Stytch and in Secrets Manager, and what it
 * records for --json.
 */
import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { leaseStillCovers, tolerateNotRotating } from '../../cli/commands/recover.js';
import { STYTCH_BUDGET_MS, type Runtime } from '../../cli/context.js';
import type { Snapshot } from '../../cli/snapshot.js';
import { NO_STATE_TABLE } from '../../cli/state.js';
import { CLIENT_ID, PROJECT_ID, SECRET_ARN, snapshotOf } from '../../cli/test-snapshots.js';
import type { Binding } from '../../functions/lib/state/table.js';
import type { ClientProvider } from '../../functions/lib/stytch/index.js';
import { cliInWorld } from '../helpers/cli-in-process.js';
import { LAMBDA_ARN, LEASE_SPAN_MS, STATE_TABLE, World } from '../helpers/world.js';

let world: World | undefined;
afterEach(() => {
  // V: nothing the function printed holds a secret.
  if (world) expect(world.leaks()).toEqual([]);
  world = undefined;
});

const four = (secret: string) => `…${secret.slice(-4)}`;

/** The CLI in process against the World; nothing it prints holds a secret (V). */
async function cli(w: World, argv: string[], runtime: Partial<Runtime> = {}) {
  const r = await cliInWorld(w, argv, runtime);
  const printed = [...r.out, ...r.err].join('\n');
  expect(w.knownSecrets().filter((s) => printed.includes(s))).toEqual([]);
  return r;
}

const stytchChanges = (w: World) => w.stytch.requests.map((r) => r.operation).filter((o) => !o.endsWith('.get') && !o.includes('token'));

/** The secret's AWSCURRENT becomes `value`, in a new version (as aws secretsmanager put-secret-value does). */
async function putCurrent(w: World, value: Record<string, unknown>, arn = w.secretArn): Promise<string> {
  const token = randomUUID();
  await w.sm.handle('PutSecretValue', { SecretId: arn, ClientRequestToken: token, SecretString: JSON.stringify(value) });
  return token;
}

/**
 * Holds recover right after its decision under the lease: its second read of
 * Stytch (the first is for the printed plan, the third is each action's own
 * check, `read` 3: the state table is read after it). `meanwhile` runs there,
 * then recover goes on.
 */
async function recoverWithChangeAfterDecision(w: World, argv: string[], meanwhile: () => Promise<void> | void, runtime: Partial<Runtime> = {}, read = 2) {
  let reads = 0;
  const decided = w.pause((c) => c.service === 'stytch' && c.invocation === undefined && c.operation.endsWith('.get') && ++reads === read, 'after');
  const run = cli(w, argv, runtime);
  // A recover that ends before that read (it refused, or stopped early) is answered at once, not waited for.
  const first = await Promise.race([decided.reached.then(() => 'held' as const), run.then(() => 'ended' as const)]);
  if (first === 'held') {
    await meanwhile();
    decided.release();
  }
  return await run;
}

const statusCommand = (w: World) => `Run status again: npm run cli -- status --secret-id ${w.secretArn}`;

const changedSincePlan = 'not done: the state changed since the plan was made (a rotation step may have been at work): this action is no longer called for.';

/** AWSPENDING on a version whose secret Stytch no longer has: recover plans to remove the label. */
async function deadPending(w: World): Promise<string> {
  const token = await w.beginRotation();
  await w.invoke('createSecret', token);
  w.stytch.adminRotateCancel(w.client.client_id);
  w.stytch.resetRequests();
  return token;
}

/** A half-done rotation: AWSCURRENT is Stytch's next secret, the rotate of finishSecret failed. */
async function halfDone(w: World) {
  const token = await w.beginRotation();
  for (const step of ['createSecret', 'setSecret', 'testSecret'] as const) await w.invoke(step, token);
  w.interceptor = (c) => (c.operation === 'connected_app.rotate' ? { when: 'before', error: 503 } : undefined);
  await expect(w.invoke('finishSecret', token)).rejects.toThrow(/503/);
  w.interceptor = undefined;
  const previous = w.versionWith('AWSPREVIOUS')!.value!.client_secret as string;
  w.stytch.resetRequests();
  return { token, previous, complete: `Complete the rotation at Stytch (rotate): ${four(w.currentSecret())} becomes its only secret, ${four(previous)} stops working` };
}

/** M2M: Stytch completed the rotation, AWSCURRENT never moved (a drift; AWSPENDING holds Stytch's current secret). */
async function m2mCompleted(w: World) {
  const token = await w.beginRotation();
  await w.invoke('createSecret', token);
  w.stytch.adminRotate(w.client.client_id);
  const old = w.versionWith('AWSCURRENT')!.id;
  const pending = w.versionWith('AWSPENDING')!.value!.client_secret as string;
  w.stytch.resetRequests();
  return { token, old, pending };
}

/** A drift whose AWSPENDING holds Stytch's next secret: recover plans to move AWSCURRENT to it. */
async function drift(w: World) {
  const token = await w.beginRotation();
  await w.invoke('createSecret', token);
  const pending = w.versionWith('AWSPENDING')!.value!.client_secret as string;
  const wrong = await putCurrent(w, { ...w.client, client_secret: 'typed-by-hand-and-wrong-9999' });
  // Secrets Manager drops AWSPENDING on a put: the label goes back on the version createSecret filled.
  await w.sm.handle('UpdateSecretVersionStage', { SecretId: w.secretArn, VersionStage: 'AWSPENDING', MoveToVersionId: token });
  w.stytch.resetRequests();
  return { token, pending, wrong, move: `Move AWSCURRENT from version ${wrong} to version ${token} (${four(pending)}), which Stytch accepts` };
}

describe('leaseStillCovers: the client the lease is on is still the one AWSCURRENT names, and the secret is bound to it (VII)', () => {
  const leased: Binding = { secretArn: SECRET_ARN, projectId: PROJECT_ID, clientId: CLIENT_ID, credentialsSecretId: undefined, kind: 'connected_app' };
  const withNames = (s: Snapshot, names: Partial<Binding> | undefined): Snapshot => {
    if (s.state.kind !== 'read') throw new Error('test bug: a read state expected');
    return { ...s, state: { ...s.state, valueNames: names && { clientId: CLIENT_ID, projectId: PROJECT_ID, credentialsSecretId: undefined, ...names } } };
  };
  const consistent = () => snapshotOf({ cur: 'aaaa', S4: 'aaaa', N4: null });

  it('covers a secret whose value names the leased client and which is bound to it', () => {
    expect(leaseStillCovers(consistent(), leased)).toBeUndefined();
  });

  it('does not cover what it cannot see: a state table that could not be read, or a value it could not read', () => {
    expect(leaseStillCovers(snapshotOf({ cur: 'aaaa', S4: 'aaaa', N4: null, table: 'unknown' }), leased)).toBe('the state table could not be read.');
    expect(leaseStillCovers(withNames(consistent(), undefined), leased)).toBe('AWSCURRENT or its credentials could not be read.');
  });

  it.each<[string, Partial<Binding>, string]>([
    ['another client', { clientId: 'connected-app-test-0002' }, `AWSCURRENT now names client connected-app-test-0002 of project ${PROJECT_ID} (the function's default credentials), not the client whose lease this command holds.`],
    ['another project', { projectId: 'project-test-0002' }, `AWSCURRENT now names client ${CLIENT_ID} of project project-test-0002 (the function's default credentials), not the client whose lease this command holds.`],
    ['other credentials', { credentialsSecretId: 'stytch/other-credentials' }, `AWSCURRENT now names client ${CLIENT_ID} of project ${PROJECT_ID} (credentials secret stytch/other-credentials), not the client whose lease this command holds.`],
  ])('does not cover a value that now names %s', (_name, names, why) => {
    expect(leaseStillCovers(withNames(consistent(), names), leased)).toBe(why);
  });

  it('does not cover a secret bound to another client than its value names, and says which', () => {
    const s = snapshotOf({ cur: 'aaaa', S4: 'aaaa', N4: null, table: { binding: { otherClient: 'connected-app-test-0009' } } });
    expect(leaseStillCovers(s, leased)).toBe(
      `Secret demo/stytch-client is bound to client connected-app-test-0009 of project ${PROJECT_ID}, but its AWSCURRENT value names client ${CLIENT_ID} of project ${PROJECT_ID}.`,
    );
  });
});

describe('tolerateNotRotating: a rotate or rotate/cancel that someone got to first has the end state wanted', () => {
  const notRotating = new Error('not_rotating_secret');
  const provider = { isNotRotating: (error: unknown) => error === notRotating } as unknown as ClientProvider;

  it('returns once the call succeeds, and when Stytch says no rotation is in progress', async () => {
    const calls: string[] = [];
    await tolerateNotRotating(provider, async () => calls.push('rotate'));
    await tolerateNotRotating(provider, async () => {
      calls.push('rotate again');
      throw notRotating;
    });
    expect(calls).toEqual(['rotate', 'rotate again']);
  });

  it('throws any other failure unchanged', async () => {
    const refused = new Error('invalid_client');
    await expect(tolerateNotRotating(provider, async () => Promise.reject(refused))).rejects.toBe(refused);
  });
});

describe('recover prints what it plans and notes, and records it for --json', () => {
  it('a drift it cannot repair: each verdict, the note explaining the way out, nothing changed, exit 2', async () => {
    const w = (world = await new World({ smTransport: 'sdk' }).init());
    const stytchCurrent = w.currentSecret();
    await putCurrent(w, { ...w.client, client_secret: 'typed-by-hand-and-wrong-9999' });
    w.stytch.resetRequests();
    const r = await cli(w, ['recover', '--secret-id', w.secretArn, '--yes']);
    expect(r.code).toBe(2);
    expect(r.err).toEqual([]);
    expect(r.out[0]).toBe('Verdict: drift (exit 2)');
    expect(r.out[1]).toBe(`  drift: AWSCURRENT (…9999) is not a secret Stytch accepts (Stytch holds ${four(stytchCurrent)}): consumers of this secret are failing now.`);
    expect(r.out[2]).toMatch(/^Note: drift: nothing recover can do safely\. recover cannot repair this\./);
    expect(r.out.slice(3)).toEqual(['Nothing for recover to do.']);
    expect(stytchChanges(w)).toEqual([]);
  });

  it('--json, dry run: the verdicts, the planned actions and the notes, and that it was a dry run', async () => {
    const w = (world = await new World({ smTransport: 'sdk' }).init());
    const orphan = w.stytch.adminRotateStart(w.client.client_id);
    const r = await cli(w, ['recover', '--secret-id', w.secretArn, '--json']);
    expect(r.code).toBe(1);
    const json = JSON.parse(r.out.join('\n')) as Record<string, unknown>;
    expect(json).toMatchObject({
      command: 'recover',
      dryRun: true,
      verdicts: ['orphan-next-secret'],
      planned: [`Cancel Stytch's next secret ${four(orphan)} (rotate/cancel); AWSCURRENT ${four(w.currentSecret())} keeps working`],
      notes: [],
      exitCode: 1,
    });
    expect(json).not.toHaveProperty('applied');
    expect(w.stytch.isAccepted(w.client.client_id, orphan)).toBe(true);
  });

  it('--json, --yes: what each action did and the status after it', async () => {
    const w = (world = await new World({ smTransport: 'sdk' }).init());
    const orphan = w.stytch.adminRotateStart(w.client.client_id);
    const r = await cli(w, ['recover', '--secret-id', w.secretArn, '--yes', '--json']);
    expect(r.code).toBe(0);
    const json = JSON.parse(r.out.join('\n')) as { dryRun: boolean; applied: unknown; status: { verdicts: Array<{ code: string }> } };
    expect(json.dryRun).toBe(false);
    expect(json.applied).toEqual([{ action: `Cancel Stytch's next secret ${four(orphan)} (rotate/cancel); AWSCURRENT ${four(w.currentSecret())} keeps working`, result: 'done' }]);
    expect(json.status.verdicts.map((v) => v.code)).toEqual(['consistent']);
  });
});

describe('recover --yes under the lease: the AWSCURRENT move that ends a drift (I)', () => {
  it('a drift whose pending secret is Stytch\'s next: moves AWSCURRENT to it, completes at Stytch, removes AWSPENDING, and tells the state table', async () => {
    // Prepare: createSecret stored Stytch's next secret; then someone put a wrong value into AWSCURRENT.
    const w = (world = await new World({ smTransport: 'sdk' }).init());
    const retired = w.currentSecret();
    const token = await w.beginRotation();
    await w.invoke('createSecret', token);
    const pending = w.versionWith('AWSPENDING')!.value!.client_secret as string;
    const wrong = await putCurrent(w, { ...w.client, client_secret: 'typed-by-hand-and-wrong-9999' });
    // Secrets Manager drops AWSPENDING on a put: the label goes back on the version createSecret filled.
    await w.sm.handle('UpdateSecretVersionStage', { SecretId: w.secretArn, VersionStage: 'AWSPENDING', MoveToVersionId: token });
    w.stytch.resetRequests();
    // Act
    const r = await cli(w, ['recover', '--secret-id', w.secretArn, '--yes']);
    // Assess
    expect(r.err).toEqual([]);
    expect(r.out.slice(3, 9)).toEqual([
      'Applying:',
      `  1. Move AWSCURRENT from version ${wrong} to version ${token} (${four(pending)}), which Stytch accepts: done`,
      `  2. Complete the rotation at Stytch (rotate): ${four(pending)} becomes its only secret, ${four(retired)} stops working: done`,
      `  3. Remove AWSPENDING from version ${token}: done`,
      'The state table records no previous secret to retire any more.',
      '',
    ]);
    expect(stytchChanges(w)).toEqual(['connected_app.rotate']);
    expect(w.snapshot().versions[token]!.stages).toEqual(['AWSCURRENT']);
    expect(w.stytch.isAccepted(w.client.client_id, pending)).toBe(true);
    expect(w.stytch.isAccepted(w.client.client_id, retired)).toBe(false);
    expect(r.code).toBe(0);
  });

  it('M2M: proves the pending secret with Stytch before moving AWSCURRENT to it', async () => {
    // Prepare: Stytch completed the rotation, AWSCURRENT never moved (drift; AWSPENDING holds Stytch's current secret).
    const w = (world = await new World({ smTransport: 'sdk', kind: 'm2m' }).init());
    const { token, old, pending } = await m2mCompleted(w);
    // Act
    const r = await cli(w, ['recover', '--secret-id', w.secretArn, '--yes']);
    // Assess
    expect(r.out.slice(3, 6)).toEqual([
      'Applying:',
      `  1. Move AWSCURRENT from version ${old} to version ${token} (${four(w.currentSecret())}), which Stytch accepts: done`,
      `  2. Remove AWSPENDING from version ${token}: done`,
    ]);
    expect(w.stytch.requests.map((q) => q.operation).filter((o) => !o.endsWith('.get'))).toEqual([expect.stringMatching(/token/)]);
    expect(w.versionWith('AWSCURRENT')!.id).toBe(token);
    expect(r.code).toBe(0);
  });
});

describe('recover --yes checks again right before each action, and stops at the first that no longer holds (VI, I)', () => {
  it('once the lease is about to run out, does nothing more and says so', async () => {
    const w = (world = await new World({ smTransport: 'sdk' }).init());
    const orphan = w.stytch.adminRotateStart(w.client.client_id);
    w.stytch.resetRequests();
    const r = await recoverWithChangeAfterDecision(w, ['recover', '--secret-id', w.secretArn, '--yes'], () => w.advance(LEASE_SPAN_MS - 30_000));
    expect(r.err).toEqual([
      `  1. Cancel Stytch's next secret ${four(orphan)} (rotate/cancel); AWSCURRENT ${four(w.currentSecret())} keeps working: not done: the lease on the client is about to run out. Nothing more was changed. ${statusCommand(w)}`,
    ]);
    expect(stytchChanges(w)).toEqual([]);
    expect(w.stytch.isAccepted(w.client.client_id, orphan)).toBe(true);
  });

  it('at the exact end of its Stytch budget under the lease, acts no more', async () => {
    const w = (world = await new World({ smTransport: 'sdk' }).init());
    const orphan = w.stytch.adminRotateStart(w.client.client_id);
    w.stytch.resetRequests();
    // The operator's clock stands still but for the moves made here: the lease is taken at `start`. AWS's answers
    // reach the CLI without their Date header (bare clients), so it counts time by this clock alone.
    const start = Date.now();
    let elapsed = 0;
    const runtime: Partial<Runtime> = {
      now: () => start + elapsed,
      sleep: async (ms) => void (elapsed += ms),
      secretsManager: () => ({ send: (command: never) => w.smClient.send(command) }) as unknown as ReturnType<Runtime['secretsManager']>,
      dynamoDB: () => ({ send: (command: never) => w.dynamoClient.send(command) }) as unknown as ReturnType<Runtime['dynamoDB']>,
    };
    const r = await recoverWithChangeAfterDecision(w, ['recover', '--secret-id', w.secretArn, '--yes'], () => void (elapsed = STYTCH_BUDGET_MS), runtime);
    expect(r.err[0]).toBe(
      `  1. Cancel Stytch's next secret ${four(orphan)} (rotate/cancel); AWSCURRENT ${four(w.currentSecret())} keeps working: not done: the lease on the client is about to run out. Nothing more was changed. ${statusCommand(w)}`,
    );
    expect(stytchChanges(w)).toEqual([]);
  });

  it('a Stytch failure while acting is an error, exit 3, not a change of state to step around', async () => {
    const w = (world = await new World({ smTransport: 'sdk' }).init());
    const orphan = w.stytch.adminRotateStart(w.client.client_id);
    w.interceptor = (c) => (c.invocation === undefined && c.operation.endsWith('.rotate_cancel') ? { when: 'before', error: 400 } : undefined);
    const r = await cli(w, ['recover', '--secret-id', w.secretArn, '--yes']);
    w.interceptor = undefined;
    expect(r.code).toBe(3);
    expect(r.out).not.toContain('Status after recover:');
    expect(r.err.join('\n')).not.toContain('not done');
    expect(r.err.at(-1)).toMatch(/^Error: /);
    expect(w.stytch.isAccepted(w.client.client_id, orphan)).toBe(true);
  });

  it('does not complete at Stytch once Stytch cancelled AWSCURRENT\'s secret meanwhile (I)', async () => {
    const w = (world = await new World({ smTransport: 'sdk' }).init());
    const h = await halfDone(w);
    const r = await recoverWithChangeAfterDecision(w, ['recover', '--secret-id', w.secretArn, '--yes'], () => w.stytch.adminRotateCancel(w.client.client_id));
    expect(r.err).toEqual([
      `  1. ${h.complete}: not done: Stytch's next secret (none) or AWSCURRENT (${four(w.currentSecret())}) changed. Nothing more was changed. ${statusCommand(w)}`,
    ]);
    expect(stytchChanges(w)).toEqual([]);
    expect(w.stytch.isAccepted(w.client.client_id, h.previous)).toBe(true);
  });

  it('does not complete at Stytch once Stytch completed and started another rotation meanwhile', async () => {
    const w = (world = await new World({ smTransport: 'sdk' }).init());
    const h = await halfDone(w);
    let next = '';
    const r = await recoverWithChangeAfterDecision(w, ['recover', '--secret-id', w.secretArn, '--yes'], () => {
      w.stytch.adminRotate(w.client.client_id);
      next = w.stytch.adminRotateStart(w.client.client_id);
    });
    expect(r.err).toEqual([
      `  1. ${h.complete}: not done: Stytch's next secret (${four(next)}) or AWSCURRENT (${four(w.currentSecret())}) changed. Nothing more was changed. ${statusCommand(w)}`,
    ]);
    expect(stytchChanges(w)).toEqual([]);
    expect(w.stytch.isAccepted(w.client.client_id, next)).toBe(true);
  });

  it('does not complete at Stytch once an overlap window is recorded for AWSCURRENT: keeping the previous secret is retire\'s decision', async () => {
    const w = (world = await new World({ smTransport: 'sdk' }).init());
    const h = await halfDone(w);
    const dueAt = Date.parse('2031-01-01T00:00:00.250Z');
    const r = await recoverWithChangeAfterDecision(w, ['recover', '--secret-id', w.secretArn, '--yes'], async () => {
      // The retirement a finishSecret with an overlap window records, written straight into the state table.
      const values: Record<string, unknown> = {
        ':rdue': { N: String(dueAt) },
        ':rver': { S: h.token },
        ':rl4': { S: w.currentSecret().slice(-4) },
        ':rpver': { S: w.versionWith('AWSPREVIOUS')!.id },
        ':rpl4': { S: h.previous.slice(-4) },
        ':rpsid': { S: '' },
        ':rmoved': { N: '0' },
        ':rdef': { N: '0' },
      };
      await w.dynamo.handle('UpdateItem', {
        TableName: STATE_TABLE,
        Key: { pk: { S: `client#${w.project.projectId}#${w.client.client_id}` } },
        UpdateExpression:
          'SET retire_due = :rdue, retire_version = :rver, retire_last4 = :rl4, retire_previous_version = :rpver, retire_previous_last4 = :rpl4, retire_previous_secret_id = :rpsid, retire_moved_at = :rmoved, retire_deferred = :rdef',
        ExpressionAttributeValues: values,
      });
      // Once the action's own read of Stytch has answered: it reads the state table after it.
    }, {}, 3);
    expect(r.err).toEqual([
      `  1. ${h.complete}: not done: the previous secret (${four(h.previous)}) is kept by an overlap window recorded for AWSCURRENT (until 2031-01-01T00:00:00Z), so this is not half-done; ` +
        `to retire it now: npm run cli -- retire --secret-id ${w.secretArn} --yes. Nothing more was changed. ${statusCommand(w)}`,
    ]);
    expect(stytchChanges(w)).toEqual([]);
    expect(w.stytch.isAccepted(w.client.client_id, h.previous)).toBe(true);
  });

  it('does not cancel a next secret other than the one it planned to (someone replaced the orphan meanwhile)', async () => {
    const w = (world = await new World({ smTransport: 'sdk' }).init());
    const orphan = w.stytch.adminRotateStart(w.client.client_id);
    w.stytch.resetRequests();
    let replacement = '';
    const r = await recoverWithChangeAfterDecision(w, ['recover', '--secret-id', w.secretArn, '--yes'], () => {
      w.stytch.adminRotateCancel(w.client.client_id);
      replacement = w.stytch.adminRotateStart(w.client.client_id);
    });
    const cur = four(w.currentSecret());
    expect(r.err).toEqual([
      `  1. Cancel Stytch's next secret ${four(orphan)} (rotate/cancel); AWSCURRENT ${cur} keeps working: not done: Stytch's secrets (${cur}, next ${four(replacement)}) or AWSCURRENT (${cur}) changed. Nothing more was changed. ${statusCommand(w)}`,
    ]);
    expect(stytchChanges(w)).toEqual([]);
    expect(w.stytch.isAccepted(w.client.client_id, replacement)).toBe(true);
  });

  it('a pending label someone removed meanwhile: "already done", and nothing is written', async () => {
    const w = (world = await new World({ smTransport: 'sdk' }).init());
    const token = await deadPending(w);
    // -y is --yes.
    const r = await recoverWithChangeAfterDecision(w, ['recover', '--secret-id', w.secretArn, '-y'], async () => {
      await w.sm.handle('UpdateSecretVersionStage', { SecretId: w.secretArn, VersionStage: 'AWSPENDING', RemoveFromVersionId: token });
    });
    expect(r.err).toEqual([]);
    expect(r.out.slice(2, 4)).toEqual(['Applying:', `  1. Remove AWSPENDING from version ${token}: already done`]);
    expect(r.code).toBe(0);
  });

  it('an orphan someone cancelled meanwhile: "already done", with no rotate/cancel of its own', async () => {
    const w = (world = await new World({ smTransport: 'sdk' }).init());
    const orphan = w.stytch.adminRotateStart(w.client.client_id);
    w.stytch.resetRequests();
    const r = await recoverWithChangeAfterDecision(w, ['recover', '--secret-id', w.secretArn, '--yes'], () => w.stytch.adminRotateCancel(w.client.client_id));
    expect(r.out.slice(2, 4)).toEqual(['Applying:', `  1. Cancel Stytch's next secret ${four(orphan)} (rotate/cancel); AWSCURRENT ${four(w.currentSecret())} keeps working: already done`]);
    expect(stytchChanges(w)).toEqual([]);
    expect(r.code).toBe(0);
  });

  it('a half-done rotation someone completed meanwhile: "already done", and the state table is not told anything', async () => {
    const w = (world = await new World({ smTransport: 'sdk' }).init());
    const token = await w.beginRotation();
    for (const s of ['createSecret', 'setSecret', 'testSecret'] as const) await w.invoke(s, token);
    w.interceptor = (c) => (c.operation === 'connected_app.rotate' ? { when: 'before', error: 503 } : undefined);
    await expect(w.invoke('finishSecret', token)).rejects.toThrow(/503/);
    w.interceptor = undefined;
    const previous = w.versionWith('AWSPREVIOUS')!.value!.client_secret as string;
    w.stytch.resetRequests();
    const r = await recoverWithChangeAfterDecision(w, ['recover', '--secret-id', w.secretArn, '--yes'], () => w.stytch.adminRotate(w.client.client_id));
    expect(r.err).toEqual([]);
    // The AWSPENDING the failed finishSecret left on the AWSCURRENT version is removed all the same.
    expect(r.out.slice(2, 6)).toEqual([
      'Applying:',
      `  1. Complete the rotation at Stytch (rotate): ${four(w.currentSecret())} becomes its only secret, ${four(previous)} stops working: already done`,
      `  2. Remove AWSPENDING from version ${token}: done`,
      '',
    ]);
    expect(stytchChanges(w)).toEqual([]);
  });

  it('a value that now names another client: the lease no longer covers it, nothing is done', async () => {
    const w = (world = await new World({ smTransport: 'sdk' }).init());
    const orphan = w.stytch.adminRotateStart(w.client.client_id);
    const other = w.stytch.createConnectedApp(w.project.projectId, { clientType: 'first_party' });
    const current = w.currentSecret();
    w.stytch.resetRequests();
    const r = await recoverWithChangeAfterDecision(w, ['recover', '--secret-id', w.secretArn, '--yes'], async () => {
      await putCurrent(w, { client_id: other.client_id, client_secret: other.client_secret });
    });
    expect(r.err).toEqual([
      `  1. Cancel Stytch's next secret ${four(orphan)} (rotate/cancel); AWSCURRENT ${four(current)} keeps working: not done: ` +
        `AWSCURRENT now names client ${other.client_id} of project ${w.project.projectId} (the function's default credentials), not the client whose lease this command holds. ` +
        `Nothing more was changed. ${statusCommand(w)}`,
    ]);
    expect(stytchChanges(w)).toEqual([]);
    expect(w.stytch.isAccepted(w.client.client_id, orphan)).toBe(true);
  });

  it('does not move AWSCURRENT to a pending secret Stytch cancelled meanwhile (I)', async () => {
    const w = (world = await new World({ smTransport: 'sdk' }).init());
    const d = await drift(w);
    const r = await recoverWithChangeAfterDecision(w, ['recover', '--secret-id', w.secretArn, '--yes'], () => w.stytch.adminRotateCancel(w.client.client_id));
    expect(r.err).toEqual([`  1. ${d.move}: not done: Stytch no longer accepts the pending secret ${four(d.pending)}. Nothing more was changed. ${statusCommand(w)}`]);
    expect(w.versionWith('AWSCURRENT')!.id).toBe(d.wrong);
    expect(w.versionWith('AWSPENDING')!.id).toBe(d.token);
    expect(stytchChanges(w)).toEqual([]);
  });

  it('does not move AWSCURRENT when it was moved meanwhile, and does nothing after that', async () => {
    const w = (world = await new World({ smTransport: 'sdk' }).init());
    const d = await drift(w);
    let newer = '';
    const r = await recoverWithChangeAfterDecision(w, ['recover', '--secret-id', w.secretArn, '--yes'], async () => {
      newer = await putCurrent(w, { ...w.client, client_secret: 'typed-by-hand-again-8888' });
      await w.sm.handle('UpdateSecretVersionStage', { SecretId: w.secretArn, VersionStage: 'AWSPENDING', MoveToVersionId: d.token });
    });
    expect(r.err).toEqual([`  1. ${d.move}: not done: the AWSCURRENT or AWSPENDING version changed since it was read. Nothing more was changed. ${statusCommand(w)}`]);
    expect(w.versionWith('AWSCURRENT')!.id).toBe(newer);
    expect(w.versionWith('AWSPENDING')!.id).toBe(d.token);
    expect(stytchChanges(w)).toEqual([]);
  });

  it('does not move AWSCURRENT to another version labelled AWSPENDING meanwhile, even one whose secret ends in the same four (I)', async () => {
    const w = (world = await new World({ smTransport: 'sdk' }).init());
    const d = await drift(w);
    const lookalike = randomUUID();
    const r = await recoverWithChangeAfterDecision(w, ['recover', '--secret-id', w.secretArn, '--yes'], async () => {
      await w.sm.handle('PutSecretValue', {
        SecretId: w.secretArn,
        ClientRequestToken: lookalike,
        SecretString: JSON.stringify({ ...w.client, client_secret: `not-what-stytch-holds-${d.pending.slice(-4)}` }),
        VersionStages: ['AWSPENDING'],
      });
    });
    expect(r.err).toEqual([`  1. ${d.move}: not done: the AWSCURRENT or AWSPENDING version changed since it was read. Nothing more was changed. ${statusCommand(w)}`]);
    expect(w.versionWith('AWSCURRENT')!.id).toBe(d.wrong);
    expect(w.versionWith('AWSPENDING')!.id).toBe(lookalike);
    expect(stytchChanges(w)).toEqual([]);
  });

  it('M2M: does not move AWSCURRENT to a pending secret Stytch\'s token endpoint refuses, and says what Stytch answered', async () => {
    const w = (world = await new World({ smTransport: 'sdk', kind: 'm2m' }).init());
    const { token, old, pending } = await m2mCompleted(w);
    w.interceptor = (c) => (c.invocation === undefined && c.operation.includes('token') ? { when: 'before', error: 400 } : undefined);
    const r = await cli(w, ['recover', '--secret-id', w.secretArn, '--yes']);
    w.interceptor = undefined;
    expect(r.err).toHaveLength(1);
    expect(r.err[0]).toMatch(
      new RegExp(
        `^  1\\. Move AWSCURRENT from version ${old} to version ${token} \\(${four(pending).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\), which Stytch accepts: not done: ` +
          `The pending secret of M2M client ${w.client.client_id} does not authenticate at Stytch's token endpoint \\(400 [a-z_]+(, request_id [^)]+)?\\)\\. Nothing more was changed\\. `,
      ),
    );
    expect(w.versionWith('AWSCURRENT')!.id).toBe(old);
    expect(w.versionWith('AWSPENDING')!.id).toBe(token);
  });
  it('M2M: a token endpoint that does not answer is an error, exit 3, and AWSCURRENT stays where it is', async () => {
    const w = (world = await new World({ smTransport: 'sdk', kind: 'm2m' }).init());
    const { token, old, pending } = await m2mCompleted(w);
    w.interceptor = (c) => (c.invocation === undefined && c.operation.includes('token') ? { when: 'before', error: 503 } : undefined);
    const r = await cli(w, ['recover', '--secret-id', w.secretArn, '--yes']);
    w.interceptor = undefined;
    expect(r.code).toBe(3);
    expect(r.err.join('\n')).not.toContain('not done');
    expect(r.err.at(-1)).toMatch(/^Error: /);
    expect(w.versionWith('AWSCURRENT')!.id).toBe(old);
    expect(w.versionWith('AWSPENDING')!.id).toBe(token);
  });
});

describe('recover --yes refuses while the binding and the value disagree (VII)', () => {
  it('plans the fix, notes the mismatch, and with --yes changes nothing at Stytch', async () => {
    // Prepare: the secret is bound to its client; its value now names another client of the project, which has an orphan.
    const w = (world = await new World({ smTransport: 'sdk' }).init());
    const other = w.stytch.createConnectedApp(w.project.projectId, { clientType: 'first_party' });
    await putCurrent(w, { client_id: other.client_id, client_secret: other.client_secret });
    const orphan = w.stytch.adminRotateStart(other.client_id);
    w.stytch.resetRequests();
    const mismatch = `Secret ${w.secretName} is bound to client ${w.client.client_id} of project ${w.project.projectId}, but its AWSCURRENT value names client ${other.client_id} of project ${w.project.projectId}`;
    // Act
    const dry = await cli(w, ['recover', '--secret-id', w.secretArn]);
    const yes = await cli(w, ['recover', '--secret-id', w.secretArn, '--yes']);
    // Assess
    expect(dry.out[0]).toBe('Verdict: binding-mismatch, orphan-next-secret (exit 1)');
    expect(dry.out.slice(3)).toEqual([
      'Planned actions (dry run: nothing was changed):',
      `  1. Cancel Stytch's next secret ${four(orphan)} (rotate/cancel); AWSCURRENT ${four(other.client_secret!)} keeps working`,
      expect.stringMatching(/^Note: binding-mismatch: recover --yes refuses to change anything until it is resolved\. If the value was not meant to change/),
      `Apply them with: npm run cli -- recover --secret-id ${w.secretArn} --yes`,
    ]);
    expect(yes.err).toEqual([`recover --yes changed nothing: ${mismatch}. Resolve that first (status shows how).`]);
    expect(yes.out).not.toContain('Applying:');
    expect(yes.code).toBe(1);
    expect(stytchChanges(w)).toEqual([]);
    expect(w.stytch.isAccepted(other.client_id, orphan)).toBe(true);
  });
});

describe('recover --yes repeats the notes of what it left alone after acting', () => {
  it('removes a placeholder AWSPENDING, and notes the overdue retirement it leaves to retire', async () => {
    const w = (world = await new World({ smTransport: 'sdk', env: { PREVIOUS_SECRET_GRACE_SECONDS: '3600' } }).init());
    await w.sm.handle('RotateSecret', { SecretId: w.secretArn });
    w.advance(3 * 3_600_000);
    const token = await w.beginRotation();
    w.stytch.resetRequests();
    const r = await cli(w, ['recover', '--secret-id', w.secretArn, '--yes']);
    expect(r.err).toEqual([]);
    expect(r.out.slice(3, 6)).toEqual([
      'Applying:',
      `  1. Remove AWSPENDING from version ${token}: done`,
      `Note: retirement-overdue: left to retire (npm run cli -- retire --secret-id ${w.secretArn} --yes), which retires the previous secret under the same checks as the sweep.`,
    ]);
    // The state table still records the previous secret to retire: recover completed nothing at Stytch (III).
    const after = r.out.slice(r.out.indexOf('Status after recover:'));
    expect(after).toContain('Verdict: retirement-overdue (exit 1)');
    expect(stytchChanges(w)).toEqual([]);
    expect(r.code).toBe(1);
  });
});

describe('recover refuses what it must not act on, before reading anything', () => {
  /** Lambda as the CLI sees it when the rotation function cannot be found. */
  const noFunction = () => ({
    send: async () => {
      throw Object.assign(new Error('Function not found'), { name: 'ResourceNotFoundException' });
    },
  });
  const withoutTable = (w: World): Partial<Runtime> => ({
    env: { STYTCH_CREDENTIALS_SECRET_ID: 'stytch/project-credentials', STYTCH_API_BASE_URL: 'http://127.0.0.1:9' },
    lambda: noFunction as unknown as Runtime['lambda'],
    now: w.clock.now,
  });

  it('--yes without a state table: names the fix and what the function lookup said, reads nothing else, exit 3', async () => {
    const w = (world = await new World({ smTransport: 'sdk' }).init());
    w.stytch.adminRotateStart(w.client.client_id);
    w.stytch.resetRequests();
    const r = await cli(w, ['recover', '--secret-id', w.secretArn, '--yes'], withoutTable(w));
    expect(r.code).toBe(3);
    expect(r.out).toEqual([]);
    expect(r.err).toEqual([
      `Error: recover --yes needs the function's state table, and none is named. It changes a Stytch client or a binding only while holding the client's lease there. ${NO_STATE_TABLE} ` +
        `The rotation function's configuration could not be read: Lambda has no function ${LAMBDA_ARN} in this account and region.`,
    ]);
    expect(w.stytch.requests).toEqual([]);
  });

  it('a dry run needs no state table: it prints the plan', async () => {
    const w = (world = await new World({ smTransport: 'sdk' }).init());
    const orphan = w.stytch.adminRotateStart(w.client.client_id);
    const r = await cli(w, ['recover', '--secret-id', w.secretArn], withoutTable(w));
    expect(r.err).toEqual([]);
    expect(r.out).toContain(`  1. Cancel Stytch's next secret ${four(orphan)} (rotate/cancel); AWSCURRENT ${four(w.currentSecret())} keeps working`);
    expect(r.code).toBe(1);
  });

  it('a project secret: refused, naming what recover acts on and where to look instead, exit 3', async () => {
    const w = (world = await new World({ smTransport: 'sdk', kind: 'project_secret' }).init());
    const r = await cli(w, ['recover', '--secret-id', w.secretArn, '-y']);
    expect(r.code).toBe(3);
    expect(r.out).toEqual([]);
    expect(r.err).toEqual([
      `Error: ${w.secretArn} holds a Stytch project secret (it has a secret_id): recover acts on Connected App and M2M client secrets only. ` +
        `A project secret's previous secret is deleted by the retirement sweep after its window; a stopped rotation is resumed by Secrets Manager's reattempt or started again with aws secretsmanager rotate-secret. ` +
        `See npm run cli -- status --secret-id ${w.secretArn}.`,
    ]);
  });
});

describe('recover --yes decides again under the lease: a plan the state moved away from is not carried out (VI)', () => {
  it('an orphan replaced by another before the lease: the one planned is gone, the new one is not cancelled', async () => {
    const w = (world = await new World({ smTransport: 'sdk' }).init());
    const orphan = w.stytch.adminRotateStart(w.client.client_id);
    w.stytch.resetRequests();
    let replacement = '';
    const r = await recoverWithChangeAfterDecision(
      w,
      ['recover', '--secret-id', w.secretArn, '--yes'],
      () => {
        w.stytch.adminRotateCancel(w.client.client_id);
        replacement = w.stytch.adminRotateStart(w.client.client_id);
      },
      {},
      1,
    );
    expect(r.err).toEqual([
      `  1. Cancel Stytch's next secret ${four(orphan)} (rotate/cancel); AWSCURRENT ${four(w.currentSecret())} keeps working: ${changedSincePlan} Nothing more was changed. ${statusCommand(w)}`,
    ]);
    expect(stytchChanges(w)).toEqual([]);
    expect(w.stytch.isAccepted(w.client.client_id, replacement)).toBe(true);
  });

  it('AWSCURRENT moved to another version before the lease: the move planned from the old one is not made', async () => {
    const w = (world = await new World({ smTransport: 'sdk' }).init());
    const d = await drift(w);
    let newer = '';
    const r = await recoverWithChangeAfterDecision(
      w,
      ['recover', '--secret-id', w.secretArn, '--yes'],
      async () => {
        newer = await putCurrent(w, { ...w.client, client_secret: 'typed-by-hand-again-8888' });
        await w.sm.handle('UpdateSecretVersionStage', { SecretId: w.secretArn, VersionStage: 'AWSPENDING', MoveToVersionId: d.token });
      },
      {},
      1,
    );
    expect(r.err).toEqual([`  1. ${d.move}: ${changedSincePlan} Nothing more was changed. ${statusCommand(w)}`]);
    expect(w.versionWith('AWSCURRENT')!.id).toBe(newer);
    expect(stytchChanges(w)).toEqual([]);
  });

  it('AWSPENDING moved to a lookalike version before the lease: AWSCURRENT is not moved to it (I)', async () => {
    const w = (world = await new World({ smTransport: 'sdk' }).init());
    const d = await drift(w);
    const lookalike = randomUUID();
    const r = await recoverWithChangeAfterDecision(
      w,
      ['recover', '--secret-id', w.secretArn, '--yes'],
      async () => {
        await w.sm.handle('PutSecretValue', {
          SecretId: w.secretArn,
          ClientRequestToken: lookalike,
          SecretString: JSON.stringify({ ...w.client, client_secret: `not-what-stytch-holds-${d.pending.slice(-4)}` }),
          VersionStages: ['AWSPENDING'],
        });
      },
      {},
      1,
    );
    expect(r.err).toEqual([`  1. ${d.move}: ${changedSincePlan} Nothing more was changed. ${statusCommand(w)}`]);
    expect(w.versionWith('AWSPENDING')!.id).toBe(lookalike);
    expect(stytchChanges(w)).toEqual([]);
  });
});

describe('recover --yes and the state table', () => {
  it('holds the client\'s lease under its own name: a rotation step meanwhile waits, naming recover', async () => {
    const w = (world = await new World({ smTransport: 'sdk' }).init());
    w.stytch.adminRotateStart(w.client.client_id);
    const token = await w.beginRotation();
    let refused: unknown;
    await recoverWithChangeAfterDecision(w, ['recover', '--secret-id', w.secretArn, '--yes'], async () => {
      refused = await w.invoke('createSecret', token).catch((error: unknown) => error);
    });
    expect(String(refused)).toMatch(new RegExp(`Another invocation holds the lease on Stytch client ${w.client.client_id} \\(recover \\(operator CLI\\), until `));
  });

  /** DynamoDB as the CLI sees it when its role may not read the state table. */
  const deniedTable = () => ({
    send: async () => {
      throw Object.assign(new Error('User is not authorized to perform: dynamodb:GetItem'), { name: 'AccessDeniedException', $metadata: {} });
    },
  });

  it('a state table it cannot read: --yes stops before printing a plan, exit 3; a dry run still prints it', async () => {
    const w = (world = await new World({ smTransport: 'sdk' }).init());
    const orphan = w.stytch.adminRotateStart(w.client.client_id);
    const runtime: Partial<Runtime> = { dynamoDB: deniedTable as unknown as Runtime['dynamoDB'] };
    const yes = await cli(w, ['recover', '--secret-id', w.secretArn, '--yes'], runtime);
    const dry = await cli(w, ['recover', '--secret-id', w.secretArn], runtime);
    expect(yes.code).toBe(3);
    expect(yes.out).toEqual([]);
    expect(yes.err).toEqual([
      `Error: AWS refused access to the state table ${STATE_TABLE} (AccessDeniedException: User is not authorized to perform: dynamodb:GetItem). ` +
        'status needs dynamodb:GetItem on it; recover, retire and bind also need PutItem, UpdateItem and DeleteItem.',
    ]);
    expect(dry.code).toBe(1);
    expect(dry.out).toContain(`  1. Cancel Stytch's next secret ${four(orphan)} (rotate/cancel); AWSCURRENT ${four(w.currentSecret())} keeps working`);
    expect(w.stytch.isAccepted(w.client.client_id, orphan)).toBe(true);
  });
});

describe('recover --yes acts on the very version and secret it planned for (VI)', () => {
  it('never cancels the next secret AWSCURRENT was moved to before the lease: completing it is another plan', async () => {
    const w = (world = await new World({ smTransport: 'sdk' }).init());
    const orphan = w.stytch.adminRotateStart(w.client.client_id);
    const current = w.currentSecret();
    w.stytch.resetRequests();
    const r = await recoverWithChangeAfterDecision(w, ['recover', '--secret-id', w.secretArn, '--yes'], () => putCurrent(w, { ...w.client, client_secret: orphan }).then(() => undefined), {}, 1);
    expect(r.err).toEqual([
      `  1. Cancel Stytch's next secret ${four(orphan)} (rotate/cancel); AWSCURRENT ${four(current)} keeps working: ${changedSincePlan} Nothing more was changed. ${statusCommand(w)}`,
    ]);
    expect(stytchChanges(w)).toEqual([]);
    expect(w.stytch.isAccepted(w.client.client_id, orphan)).toBe(true);
  });

  it('a dead AWSPENDING moved to another dead version before the lease: the label is not removed from either', async () => {
    const w = (world = await new World({ smTransport: 'sdk' }).init());
    const token = await deadPending(w);
    const other = randomUUID();
    const r = await recoverWithChangeAfterDecision(
      w,
      ['recover', '--secret-id', w.secretArn, '--yes'],
      async () => {
        await w.sm.handle('PutSecretValue', { SecretId: w.secretArn, ClientRequestToken: other, SecretString: JSON.stringify({ ...w.client, client_secret: 'cancelled-long-ago-7777' }), VersionStages: ['AWSPENDING'] });
      },
      {},
      1,
    );
    expect(r.err).toEqual([`  1. Remove AWSPENDING from version ${token}: ${changedSincePlan} Nothing more was changed. ${statusCommand(w)}`]);
    expect(w.versionWith('AWSPENDING')!.id).toBe(other);
  });

  it('AWSPENDING moved onto the AWSCURRENT version meanwhile: the version planned for no longer holds it, "already done"', async () => {
    const w = (world = await new World({ smTransport: 'sdk' }).init());
    const token = await deadPending(w);
    const current = w.versionWith('AWSCURRENT')!.id;
    const r = await recoverWithChangeAfterDecision(w, ['recover', '--secret-id', w.secretArn, '--yes'], async () => {
      await w.sm.handle('UpdateSecretVersionStage', { SecretId: w.secretArn, VersionStage: 'AWSPENDING', MoveToVersionId: current, RemoveFromVersionId: token });
    });
    expect(r.err).toEqual([]);
    expect(r.out.slice(2, 4)).toEqual(['Applying:', `  1. Remove AWSPENDING from version ${token}: already done`]);
    expect(w.snapshot().versions[current]!.stages).toEqual(['AWSCURRENT', 'AWSPENDING']);
  });

  it('the AWSPENDING a failed finishSecret left on AWSCURRENT, removed by someone meanwhile: "already done"', async () => {
    const w = (world = await new World({ smTransport: 'sdk' }).init());
    const token = await w.beginRotation();
    for (const step of ['createSecret', 'setSecret', 'testSecret'] as const) await w.invoke(step, token);
    w.interceptor = (c) => (c.operation === 'connected_app.rotate' ? { when: 'before', error: 503 } : undefined);
    await expect(w.invoke('finishSecret', token)).rejects.toThrow(/503/);
    w.interceptor = undefined;
    w.stytch.resetRequests();
    const r = await recoverWithChangeAfterDecision(w, ['recover', '--secret-id', w.secretArn, '--yes'], async () => {
      await w.sm.handle('UpdateSecretVersionStage', { SecretId: w.secretArn, VersionStage: 'AWSPENDING', RemoveFromVersionId: token });
    });
    expect(r.err).toEqual([]);
    expect(r.out).toContain(`  2. Remove AWSPENDING from version ${token}: already done`);
    expect(w.snapshot().versions[token]!.stages).toEqual(['AWSCURRENT']);
  });
});

describe('recover --yes: the last checks before each action, case by case', () => {
  it('a usage error names recover, and what is wrong', async () => {
    const w = (world = await new World({ smTransport: 'sdk' }).init());
    const r = await cli(w, ['recover', '--secret-id', w.secretArn, '--frobnicate']);
    expect(r.code).toBe(3);
    expect(r.err[0]).toBe("Error: recover: Unknown option '--frobnicate'");
    expect(r.out).toEqual([]);
  });

  /** The CLI's state-table reads fail during its `n`th read of the secret under the lease, and only then. */
  function tableFailsUnderLease(w: World, n: number) {
    let leased = false;
    let reads = 0;
    w.interceptor = (c) => {
      if (c.invocation !== undefined) return undefined;
      if (c.service === 'dynamodb' && c.operation === 'UpdateItem') leased = true;
      if (leased && c.operation === 'DescribeSecret') reads++;
      return reads === n && c.service === 'dynamodb' && c.operation === 'GetItem' ? { when: 'before', error: 'InternalServiceError' } : undefined;
    };
  }

  it.each([
    ['its decision under the lease', 1],
    ['the action\'s own check', 2],
  ])('a state table it cannot read at %s: an error, exit 3, nothing changed, the lease given back', async (_when, n) => {
    const w = (world = await new World({ smTransport: 'sdk' }).init());
    const orphan = w.stytch.adminRotateStart(w.client.client_id);
    w.stytch.resetRequests();
    tableFailsUnderLease(w, n);
    const r = await cli(w, ['recover', '--secret-id', w.secretArn, '--yes']);
    w.interceptor = undefined;
    expect(r.out.at(-1)).toBe('Applying:');
    expect(r.err).toEqual(['Error: InternalServerError: Internal server error']);
    expect(r.code).toBe(3);
    expect(stytchChanges(w)).toEqual([]);
    expect(w.stytch.isAccepted(w.client.client_id, orphan)).toBe(true);
    expect((await w.stateItem())?.lease).toBeUndefined();
  });

  it('--json records an action not done, and why', async () => {
    const w = (world = await new World({ smTransport: 'sdk' }).init());
    const orphan = w.stytch.adminRotateStart(w.client.client_id);
    w.stytch.resetRequests();
    const r = await recoverWithChangeAfterDecision(w, ['recover', '--secret-id', w.secretArn, '--yes', '--json'], () => w.advance(LEASE_SPAN_MS - 30_000));
    const json = JSON.parse(r.out.join('\n')) as { applied: unknown };
    expect(json.applied).toEqual([
      {
        action: `Cancel Stytch's next secret ${four(orphan)} (rotate/cancel); AWSCURRENT ${four(w.currentSecret())} keeps working`,
        result: 'not done: the lease on the client is about to run out.',
      },
    ]);
    expect(stytchChanges(w)).toEqual([]);
  });

  it('does not move AWSCURRENT once AWSPENDING was taken off its version meanwhile', async () => {
    const w = (world = await new World({ smTransport: 'sdk' }).init());
    const d = await drift(w);
    const r = await recoverWithChangeAfterDecision(w, ['recover', '--secret-id', w.secretArn, '--yes'], async () => {
      await w.sm.handle('UpdateSecretVersionStage', { SecretId: w.secretArn, VersionStage: 'AWSPENDING', RemoveFromVersionId: d.token });
    });
    expect(r.err).toEqual([`  1. ${d.move}: not done: the AWSCURRENT or AWSPENDING version changed since it was read. Nothing more was changed. ${statusCommand(w)}`]);
    expect(w.versionWith('AWSCURRENT')!.id).toBe(d.wrong);
    expect(stytchChanges(w)).toEqual([]);
  });

  it('M2M: a secret deleted between the action\'s check and its read of the pending value: nothing is moved, and it says why', async () => {
    const w = (world = await new World({ smTransport: 'sdk', kind: 'm2m' }).init());
    const { token, old, pending } = await m2mCompleted(w);
    const r = await recoverWithChangeAfterDecision(
      w,
      ['recover', '--secret-id', w.secretArn, '--yes'],
      async () => {
        await w.sm.handle('DeleteSecret', { SecretId: w.secretArn, ForceDeleteWithoutRecovery: true });
      },
      {},
      3,
    );
    expect(r.err[0]).toBe(
      `  1. Move AWSCURRENT from version ${old} to version ${token} (${four(pending)}), which Stytch accepts: not done: ` +
        `the pending version has no value any more. Nothing more was changed. ${statusCommand(w)}`,
    );
    expect(w.stytch.requests.filter((q) => q.operation.includes('token'))).toEqual([]);
  });

  it('a half-done rotation replaced by another before the lease: the rotate planned for the first is not made for the second', async () => {
    const w = (world = await new World({ smTransport: 'sdk' }).init());
    const h = await halfDone(w);
    let next = '';
    const r = await recoverWithChangeAfterDecision(
      w,
      ['recover', '--secret-id', w.secretArn, '--yes'],
      async () => {
        w.stytch.adminRotate(w.client.client_id);
        next = w.stytch.adminRotateStart(w.client.client_id);
        await putCurrent(w, { ...w.client, client_secret: next });
      },
      {},
      1,
    );
    expect(r.err).toEqual([`  1. ${h.complete}: ${changedSincePlan} Nothing more was changed. ${statusCommand(w)}`]);
    expect(stytchChanges(w)).toEqual([]);
    expect(w.stytch.isAccepted(w.client.client_id, next)).toBe(true);
  });

  it('a half-done rotation whose AWSCURRENT went back to Stytch\'s current secret before the lease: no rotate, and no cancel either', async () => {
    const w = (world = await new World({ smTransport: 'sdk' }).init());
    const h = await halfDone(w);
    const next = w.currentSecret();
    const r = await recoverWithChangeAfterDecision(w, ['recover', '--secret-id', w.secretArn, '--yes'], () => putCurrent(w, { ...w.client, client_secret: h.previous }).then(() => undefined), {}, 1);
    expect(r.err).toEqual([`  1. ${h.complete}: ${changedSincePlan} Nothing more was changed. ${statusCommand(w)}`]);
    expect(stytchChanges(w)).toEqual([]);
    expect(w.stytch.isAccepted(w.client.client_id, next)).toBe(true);
    expect(w.stytch.isAccepted(w.client.client_id, h.previous)).toBe(true);
  });
});

describe('recover --yes tells secrets apart by more than their last four characters where Stytch lets it (I)', () => {
  /**
   * Stytch shows only a secret's last four characters. A World whose Stytch mints, inside `alike`, secrets
   * that all end in the same four: the coincidence recover must not mistake for "nothing changed".
   */
  function alikeWorld() {
    let alike = false;
    let n = 0;
    // A secret is 33 random bytes in base64url: its last four characters are its last three bytes.
    const random = () => (alike && n++ % 33 >= 30 ? 0.5 : Math.random());
    const w = new World({ smTransport: 'sdk', stytchRandom: random });
    const mint = (f: () => string) => {
      alike = true;
      n = 0;
      try {
        return f();
      } finally {
        alike = false;
      }
    };
    return { w, mint };
  }

  it('does not cancel once Stytch completed the orphan and started another ending alike: AWSCURRENT is no longer its current secret', async () => {
    const { w: unready, mint } = alikeWorld();
    const w = (world = await unready.init());
    const current = w.currentSecret();
    const orphan = mint(() => w.stytch.adminRotateStart(w.client.client_id));
    w.stytch.resetRequests();
    let next = '';
    const r = await recoverWithChangeAfterDecision(w, ['recover', '--secret-id', w.secretArn, '--yes'], () => {
      w.stytch.adminRotate(w.client.client_id);
      next = mint(() => w.stytch.adminRotateStart(w.client.client_id));
    });
    expect(next).not.toBe(orphan);
    expect(four(next)).toBe(four(orphan));
    expect(r.err).toEqual([
      `  1. Cancel Stytch's next secret ${four(orphan)} (rotate/cancel); AWSCURRENT ${four(current)} keeps working: not done: ` +
        `Stytch's secrets (${four(orphan)}, next ${four(next)}) or AWSCURRENT (${four(current)}) changed. Nothing more was changed. ${statusCommand(w)}`,
    ]);
    expect(stytchChanges(w)).toEqual([]);
    expect(w.stytch.isAccepted(w.client.client_id, next)).toBe(true);
  });

  it('does not carry out a cancel planned for another pair of secrets than the one it decides on under the lease', async () => {
    const { w: unready, mint } = alikeWorld();
    const w = (world = await unready.init());
    const current = w.currentSecret();
    const orphan = mint(() => w.stytch.adminRotateStart(w.client.client_id));
    w.stytch.resetRequests();
    let next = '';
    const r = await recoverWithChangeAfterDecision(
      w,
      ['recover', '--secret-id', w.secretArn, '--yes'],
      async () => {
        // Two rotations completed by hand, AWSCURRENT moved to the second's secret, and a new orphan that ends like the
        // first: recover now decides to cancel a next secret ending in the same four, beside another current secret.
        w.stytch.adminRotate(w.client.client_id);
        const between = w.stytch.adminRotateStart(w.client.client_id);
        w.stytch.adminRotate(w.client.client_id);
        await putCurrent(w, { ...w.client, client_secret: between });
        next = mint(() => w.stytch.adminRotateStart(w.client.client_id));
      },
      {},
      1,
    );
    expect(four(next)).toBe(four(orphan));
    expect(four(w.currentSecret())).not.toBe(four(current));
    expect(r.err).toEqual([
      `  1. Cancel Stytch's next secret ${four(orphan)} (rotate/cancel); AWSCURRENT ${four(current)} keeps working: ${changedSincePlan} Nothing more was changed. ${statusCommand(w)}`,
    ]);
    expect(stytchChanges(w)).toEqual([]);
    expect(w.stytch.isAccepted(w.client.client_id, next)).toBe(true);
  });
});
