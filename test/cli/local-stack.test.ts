import { execFile, execSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../cli/cli.js';
import type { Runtime } from '../../cli/context.js';
import type { StatusJson } from '../../cli/render.js';
import { takeLease, type HeldLease } from '../../functions/lib/state/lease.js';
import { clientKey, StateTable } from '../../functions/lib/state/table.js';
import { CREDENTIALS_SECRET_NAME, LocalStack, STATE_TABLE_NAME, type SeededSecret } from '../../infra/local/stack.js';

/**
 * The CLI against the local stack (both emulators and DynamoDB on loopback,
 * the BUILT function as the rotation Lambda): for each state of DESIGN.md §4,
 * put the stack in it with the emulators' outside actions or by running some
 * steps, then check what status reports (verdict, fix, exit code) and that
 * recover, retire and bind leave AWSCURRENT accepted by Stytch (I), wait for
 * a lease someone else holds (VI), and respect the binding (VII). Commands run
 * in-process through runCli, and a few times as real child processes. Every
 * line any of them printed is checked for secrets at the end (invariant V).
 */

let stack: LocalStack;
const printed: string[] = [];
const seededNames: string[] = [];
const extraSecrets: string[] = [];

interface Run {
  code: number;
  out: string;
  err: string;
}

/** The CLI in-process, with parts of its runtime replaced (a clock, an environment). */
async function cliWith(runtime: Partial<Runtime>, ...argv: string[]): Promise<Run> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(argv, { io: { out: (line) => out.push(line), err: (line) => err.push(line) }, runtime });
  printed.push(...out, ...err);
  return { code, out: out.join('\n'), err: err.join('\n') };
}

const cli = (...argv: string[]) => cliWith({}, ...argv);

async function status(name: string, runtime: Partial<Runtime> = {}): Promise<StatusJson & { code: number }> {
  const run = await cliWith(runtime, 'status', '--secret-id', name, '--json');
  return { ...(JSON.parse(run.out) as StatusJson), code: run.code };
}

/** A CLI clock whose sleeps return at once and move it on: a 10 s wait for a lease takes no real time. */
function fastClock(): Partial<Runtime> {
  let offset = 0;
  return {
    now: () => Date.now() + offset,
    sleep: async (ms) => {
      offset += ms;
    },
  };
}

/** The CLI's clock, `ms` ahead of the function's. */
const clockAhead = (ms: number): Partial<Runtime> => ({ now: () => Date.now() + ms });

/** The state table, as another mutator (a rotation step) reaches it. */
const stateTable = () =>
  new StateTable(
    new DynamoDBClient({ endpoint: stack.secretsManagerUrl, region: 'us-east-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } }),
    STATE_TABLE_NAME,
  );

/** Takes the lease on a seeded secret's client on purpose, as a rotation step of the function would (VI). */
async function holdLease(secretArn: string, clientId: string, what: string): Promise<HeldLease> {
  return await takeLease(
    stateTable(),
    {
      binding: { secretArn, projectId: stack.project.projectId, clientId, credentialsSecretId: undefined, kind: 'connected_app' },
      bind: false,
      holder: 'test/held-on-purpose',
      what,
      until: Date.now() + 60_000,
    },
    { waitUntil: 0, clock: { now: Date.now, sleep: async () => undefined, random: Math.random } },
  );
}

/** The client's state table item, or undefined. */
async function clientItem(clientId: string): Promise<Record<string, unknown> | undefined> {
  const pk = clientKey({ projectId: stack.project.projectId, clientId });
  return (await stack.dynamo.scan()).find((item) => (item.pk as { S?: string } | undefined)?.S === pk);
}

/** The secret's AWSCURRENT value as stored (for outside writes; never printed). */
function currentValue(name: string): string {
  const entry = Object.values(stack.sm.inspect(name).versions).find((v) => v.stages.includes('AWSCURRENT'));
  return entry!.secretString!;
}

/** A child process, asynchronous: the emulators answer from this process's event loop. */
function child(command: string, args: string[], env: Record<string, string>): Promise<Run> {
  return new Promise((resolve) => {
    execFile(command, args, { env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env }, timeout: 20_000 }, (error, stdout, stderr) => {
      printed.push(stdout, stderr);
      const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
      resolve({ code, out: stdout, err: stderr });
    });
  });
}

const childEnv = () => ({
  AWS_ENDPOINT_URL_SECRETS_MANAGER: stack.secretsManagerUrl,
  AWS_ENDPOINT_URL_DYNAMODB: stack.secretsManagerUrl,
  ROTATION_STATE_TABLE: STATE_TABLE_NAME,
  AWS_REGION: 'us-east-1',
  AWS_ACCESS_KEY_ID: 'dummy',
  AWS_SECRET_ACCESS_KEY: 'dummy',
  STYTCH_CREDENTIALS_SECRET_ID: CREDENTIALS_SECRET_NAME,
  AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
});

let counter = 0;
async function seed(kind: 'connected_app' | 'm2m' = 'connected_app'): Promise<SeededSecret> {
  const seeded = await stack.seedSecret({ name: `cli/${kind}-${++counter}`, kind });
  seededNames.push(seeded.name);
  return seeded;
}

/** Attaches the rotation function without rotating (RotateImmediately=false runs only the configuration test). */
async function seedWithRotation(kind: 'connected_app' | 'm2m' = 'connected_app'): Promise<SeededSecret> {
  const seeded = await seed(kind);
  await stack.rotate(seeded.name, { rotateImmediately: false });
  return seeded;
}

/** Labels a new version AWSPENDING (as RotateSecret does) and runs the given steps of the built function on it. */
async function runSteps(seeded: SeededSecret, steps: Array<'createSecret' | 'setSecret' | 'testSecret' | 'finishSecret'>): Promise<string> {
  const token = stack.sm.beginRotation(seeded.name);
  for (const step of steps) await stack.invoke({ Step: step, SecretId: seeded.arn, ClientRequestToken: token });
  return token;
}

function versions(name: string) {
  const snapshot = stack.sm.inspect(name);
  const find = (stage: string) => {
    const entry = Object.entries(snapshot.versions).find(([, v]) => v.stages.includes(stage));
    if (!entry) return undefined;
    const [id, v] = entry;
    return { id, stages: v.stages, secret: v.secretString ? (JSON.parse(v.secretString) as { client_secret: string }).client_secret : undefined };
  };
  return { current: find('AWSCURRENT')!, pending: find('AWSPENDING'), previous: find('AWSPREVIOUS') };
}

/** Invariant I, checked at the end of every test. */
function expectCurrentAccepted(seeded: SeededSecret): void {
  expect(stack.stytch.isAccepted(seeded.clientId, versions(seeded.name).current.secret!)).toBe(true);
}

function expectConsistent(seeded: SeededSecret, run: Run): void {
  expect(run.out).toContain('Verdict: consistent (exit 0)');
  expect(run.code).toBe(0);
  expectCurrentAccepted(seeded);
  expect(stack.stytch.clientState(seeded.clientId).nextClientSecretLast4).toBeNull();
  // Ids and labels only: an assertion's diff must not print a secret either.
  const pending = versions(seeded.name).pending;
  expect(pending && { id: pending.id, stages: pending.stages }).toBeUndefined();
}

beforeAll(async () => {
  if (!existsSync('dist/rotate-stytch-secret/index.mjs') || !existsSync('dist/cli/index.mjs')) execSync('npm run build', { stdio: 'ignore' });
  stack = await LocalStack.start();
});

afterAll(async () => {
  await stack?.close();
});

describe('CLI against the local stack: status and recover for each state', () => {
  it('consistent: status exits 0 and recover has nothing to do', async () => {
    // Prepare
    const seeded = await seed();
    await stack.rotate(seeded.name);
    // Act
    const s = await status(seeded.name);
    const human = await cli('status', '--secret-id', seeded.name);
    const recover = await cli('recover', '--secret-id', seeded.name, '--yes');
    // Assess
    expect(s).toMatchObject({ code: 0, verdict: 'consistent', exitCode: 0, client: { id: seeded.clientId, kind: 'connected_app' } });
    expect(s.rotation).toMatchObject({ enabled: true, lambdaArn: expect.stringContaining('arn:aws:lambda:'), schedule: 'rate(30 days)' });
    expect(s.rotation.lastRotatedDate).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(s.versions.AWSCURRENT!.last4).toBe(versions(seeded.name).current.secret!.slice(-4));
    expect(s.versions.AWSPREVIOUS!.last4).toBe(versions(seeded.name).previous!.secret!.slice(-4));
    expect(s.stytch).toEqual({ currentLast4: s.versions.AWSCURRENT!.last4, nextLast4: null });
    expect(human.code).toBe(0);
    expect(human.out).toMatch(/^AWSCURRENT\s+\S+\s+\S{4}$/m);
    expect(recover.out).toContain('Nothing for recover to do.');
    expect(recover.code).toBe(0);
    expectCurrentAccepted(seeded);
  });

  it('rotation-in-progress: status exits 1 and says nothing is needed; recover leaves it unless asked to cancel it', async () => {
    // Prepare: createSecret ran, the rest has not.
    const seeded = await seedWithRotation();
    const token = await runSteps(seeded, ['createSecret']);
    // Act
    const s = await status(seeded.name);
    const recover = await cli('recover', '--secret-id', seeded.name, '--yes');
    const stillPending = versions(seeded.name).pending?.id;
    const cancel = await cli('recover', '--secret-id', seeded.name, '--cancel-rotation', '--yes');
    // Assess
    expect(s).toMatchObject({ code: 1, verdict: 'rotation-in-progress' });
    expect(s.verdicts).toHaveLength(1);
    expect(s.verdicts[0]!.fix.command).toBeNull();
    expect(s.versions.AWSPENDING).toMatchObject({ versionId: token, last4: s.stytch!.nextLast4 });
    expect(recover.code).toBe(1);
    expect(recover.out).toContain('rotation-in-progress: left alone');
    expect(stillPending).toBe(token);
    expect(cancel.out).toContain(`Remove AWSPENDING from version ${token}: done`);
    expectConsistent(seeded, cancel);
  });

  it('half-done: status names recover, whose dry run changes nothing and whose --yes completes the rotation at Stytch', async () => {
    // Prepare: finishSecret moved AWSCURRENT, then Stytch refused rotate.
    const seeded = await seedWithRotation();
    stack.stytch.addFault({ operation: 'connected_app.rotate', mode: 'before', status: 400, errorType: 'injected_fault' });
    await expect(runSteps(seeded, ['createSecret', 'setSecret', 'testSecret', 'finishSecret'])).rejects.toThrow(/injected_fault/);
    const old = versions(seeded.name).previous!.secret!;
    // Act
    const s = await status(seeded.name);
    const dryRun = await cli('recover', '--secret-id', seeded.name);
    const stateAfterDryRun = stack.stytch.clientState(seeded.clientId);
    const recover = await cli('recover', '--secret-id', seeded.name, '--yes');
    // Assess
    expect(s).toMatchObject({ code: 1, verdict: 'half-done' });
    expect(s.verdicts.map((v) => v.code)).toEqual(['half-done']);
    expect(s.verdicts[0]!.fix.command).toBe(`npm run cli -- recover --secret-id ${seeded.name} --yes`);
    expect(s.stytch!.nextLast4).toBe(s.versions.AWSCURRENT!.last4);
    expect(dryRun.code).toBe(1);
    expect(dryRun.out).toContain('Planned actions (dry run: nothing was changed):');
    expect(dryRun.out).toContain('Complete the rotation at Stytch (rotate)');
    expect(stateAfterDryRun.nextClientSecretLast4).toBe(s.stytch!.nextLast4);
    expectConsistent(seeded, recover);
    expect(stack.stytch.isAccepted(seeded.clientId, old)).toBe(false);
  });

  it('orphan-next-secret (M2M): recover cancels the next secret nobody holds', async () => {
    // Prepare: a rotation started by hand after a clean one.
    const seeded = await seed('m2m');
    await stack.rotate(seeded.name);
    const orphan = stack.stytch.adminRotateStart(seeded.clientId);
    extraSecrets.push(orphan);
    // Act
    const s = await status(seeded.name);
    const recover = await cli('recover', '--secret-id', seeded.name, '--yes');
    // Assess
    expect(s).toMatchObject({ code: 1, verdict: 'orphan-next-secret', client: { kind: 'm2m' } });
    expect(s.stytch!.nextLast4).toBe(orphan.slice(-4));
    expect(s.verdicts[0]!.fix).toMatchObject({ command: `npm run cli -- recover --secret-id ${seeded.name} --yes`, byRecover: true });
    expect(recover.out).toMatch(/Cancel Stytch's next secret …\S{4} \(rotate\/cancel\).*: done/);
    expectConsistent(seeded, recover);
    expect(stack.stytch.isAccepted(seeded.clientId, orphan)).toBe(false);
  });

  it('dead-pending: status names the exact label removal, and recover removes AWSPENDING', async () => {
    // Prepare: the rotation was cancelled at Stytch behind Secrets Manager's back.
    const seeded = await seedWithRotation();
    const token = await runSteps(seeded, ['createSecret']);
    stack.stytch.adminRotateCancel(seeded.clientId);
    // Act
    const s = await status(seeded.name);
    const recover = await cli('recover', '--secret-id', seeded.name, '--yes');
    // Assess
    expect(s).toMatchObject({ code: 1, verdict: 'dead-pending' });
    expect(s.verdicts.map((v) => v.code)).toEqual(['dead-pending']);
    expect(s.verdicts[0]!.fix.explanation).toContain(
      `aws secretsmanager update-secret-version-stage --secret-id ${seeded.name} --version-stage AWSPENDING --remove-from-version-id ${token}`,
    );
    expectConsistent(seeded, recover);
  });

  it('pending-without-value: recover removes the placeholder, after which a rotation can start again', async () => {
    // Prepare: RotateSecret labelled the version, createSecret never ran.
    const seeded = await seedWithRotation();
    await runSteps(seeded, []);
    // Act
    const s = await status(seeded.name);
    const recover = await cli('recover', '--secret-id', seeded.name, '--yes');
    const rotate = await cli('rotate', '--secret-id', seeded.name, '--wait');
    // Assess
    expect(s).toMatchObject({ code: 1, verdict: 'pending-without-value' });
    expect(s.versions.AWSPENDING).toMatchObject({ last4: null, value: 'none' });
    expectConsistent(seeded, recover);
    expect(rotate.code).toBe(0);
    expectCurrentAccepted(seeded);
  });

  it('drift: status exits 2, recover changes nothing and explains, and the fix it names (a rotation) repairs it', async () => {
    // Prepare: someone rotated the client at Stytch outside Secrets Manager.
    const seeded = await seed();
    extraSecrets.push(stack.stytch.adminRotateStart(seeded.clientId));
    stack.stytch.adminRotate(seeded.clientId);
    const before = { sm: stack.sm.inspect(seeded.name), stytch: stack.stytch.clientState(seeded.clientId) };
    await stack.rotate(seeded.name, { rotateImmediately: false }); // the configuration test fails under drift; it only attaches rotation
    const attached = stack.sm.inspect(seeded.name);
    // Act
    const s = await status(seeded.name);
    const recover = await cli('recover', '--secret-id', seeded.name, '--yes');
    const unchanged = { sm: stack.sm.inspect(seeded.name), stytch: stack.stytch.clientState(seeded.clientId) };
    const rotate = await cli('rotate', '--secret-id', seeded.name, '--wait');
    // Assess
    expect(attached.versions).toEqual(before.sm.versions);
    expect(s).toMatchObject({ code: 2, verdict: 'drift', exitCode: 2 });
    expect(s.verdicts[0]!.fix).toMatchObject({ command: `aws secretsmanager rotate-secret --secret-id ${seeded.name}`, byRecover: false });
    expect(recover.code).toBe(2);
    expect(recover.out).toContain('drift: nothing recover can do safely');
    expect(recover.out).toContain(`It retires …${before.stytch.clientSecretLast4}`);
    // The fix it refers to is printed where it is referred to.
    expect(recover.out).toContain(`Otherwise issue a new secret: aws secretsmanager rotate-secret --secret-id ${seeded.name}`);
    expect(unchanged).toEqual({ sm: attached, stytch: before.stytch });
    expect(rotate.out).toContain('Rotation complete');
    expectConsistent(seeded, rotate);
  });

  it('drift because Stytch completed before AWSCURRENT moved (M2M): recover probes the pending secret and moves AWSCURRENT to it', async () => {
    // Prepare: createSecret ran, then the client was rotated at Stytch by hand.
    const seeded = await seedWithRotation('m2m');
    const token = await runSteps(seeded, ['createSecret']);
    stack.stytch.adminRotate(seeded.clientId);
    stack.stytch.resetRequests();
    // Act
    const s = await status(seeded.name);
    const recover = await cli('recover', '--secret-id', seeded.name, '--yes');
    // Assess
    expect(s).toMatchObject({ code: 2, verdict: 'drift' });
    expect(s.verdicts.map((v) => v.code)).toEqual(['drift', 'rotation-in-progress']);
    expect(s.verdicts[0]!.fix.byRecover).toBe(true);
    expect(stack.stytch.requests.some((r) => r.operation === 'm2m.token' && r.status === 200)).toBe(true);
    expect(versions(seeded.name).current.id).toBe(token);
    expectConsistent(seeded, recover);
  });

  it('orphan-next-secret with pending-without-value (a crash between rotate/start and PutSecretValue): recover cancels and clears both', async () => {
    const seeded = await seedWithRotation();
    await runSteps(seeded, []);
    extraSecrets.push(stack.stytch.adminRotateStart(seeded.clientId));
    const s = await status(seeded.name);
    const recover = await cli('recover', '--secret-id', seeded.name, '--yes');
    expect(s.verdicts.map((v) => v.code)).toEqual(['orphan-next-secret', 'pending-without-value']);
    expectConsistent(seeded, recover);
  });
});

describe('CLI against the local stack: rotate', () => {
  it.each(['connected_app', 'm2m'] as const)('rotate --wait rotates a %s end to end and reports consistent', async (kind) => {
    // Prepare
    const seeded = await seedWithRotation(kind);
    const old = versions(seeded.name).current;
    // Act
    const run = await cli('rotate', '--secret-id', seeded.name, '--wait', '--timeout', '30');
    // Assess
    const now = versions(seeded.name);
    expect(run.out).toContain(`Rotation complete: AWSCURRENT is version ${now.current.id}.`);
    expect(run.out).toMatch(new RegExp(`AWSCURRENT +${now.current.id} +${now.current.secret!.slice(-4)}`));
    expectConsistent(seeded, run);
    expect(now.previous!.id).toBe(old.id);
    expect(stack.stytch.isAccepted(seeded.clientId, old.secret!)).toBe(false);
  });

  it('rotate without --wait starts the rotation and names the status command to follow it', async () => {
    const seeded = await seedWithRotation();
    const run = await cli('rotate', '--secret-id', seeded.name);
    expect(run.code).toBe(0);
    expect(run.out).toContain(`Follow it with: npm run cli -- status --secret-id ${seeded.name}`);
    expectCurrentAccepted(seeded);
  });

  it('rotate explains how to attach rotation when none is configured (exit 3)', async () => {
    const seeded = await seed();
    const run = await cli('rotate', '--secret-id', seeded.name, '--wait');
    expect(run.code).toBe(3);
    expect(run.err).toContain(`Rotation is not configured for secret ${seeded.name}`);
    expect(run.err).toContain('--rotation-lambda-arn');
  });

  it('rotate --wait fails with exit 1 and prints the status verdict when the rotation does not finish in time', async () => {
    // Prepare: every attempt's rotate/start is refused, so the placeholder stays AWSPENDING.
    const seeded = await seedWithRotation();
    stack.stytch.addFault({ operation: 'connected_app.rotate_start', mode: 'before', status: 400, errorType: 'injected_fault', times: 3 });
    // Act
    const run = await cli('rotate', '--secret-id', seeded.name, '--wait', '--timeout', '0.3');
    stack.stytch.clearFaults();
    const again = await cli('rotate', '--secret-id', seeded.name);
    const recover = await cli('recover', '--secret-id', seeded.name, '--yes');
    // Assess
    expect(run.code).toBe(1);
    expect(run.err).toContain('Rotation did not finish within 0.3 s');
    expect(run.out).toContain('Verdict: pending-without-value (exit 1)');
    expect(again.code).toBe(1);
    expect(again.err).toContain("isn't complete");
    expectConsistent(seeded, recover);
  });

  it('rotate --wait reports a rotation the function cancelled (exit 1), leaving AWSCURRENT working', async () => {
    // Prepare: testSecret finds Stytch no longer holds the pending secret: a definitive failure, so the function cancels.
    const seeded = await seedWithRotation();
    stack.stytch.addFault({ operation: 'connected_app.get', mode: 'before', status: 404, errorType: 'idp_client_not_found', times: 1 });
    // Act
    const run = await cli('rotate', '--secret-id', seeded.name, '--wait', '--timeout', '5');
    // Assess
    expect(run.code).toBe(1);
    expect(run.err).toContain('Rotation failed');
    expect(run.out).toContain('Verdict: consistent (exit 0)');
    expectCurrentAccepted(seeded);
  });
});

describe('CLI against the local stack: configuration and processes', () => {
  it('uses --endpoint-url and --credentials-secret-id when the environment names neither, and repeats them in the commands it prints', async () => {
    // Prepare
    const seeded = await seed();
    stack.stytch.adminRotateStart(seeded.clientId);
    const saved = { endpoint: process.env.AWS_ENDPOINT_URL_SECRETS_MANAGER, credentials: process.env.STYTCH_CREDENTIALS_SECRET_ID };
    delete process.env.AWS_ENDPOINT_URL_SECRETS_MANAGER;
    delete process.env.STYTCH_CREDENTIALS_SECRET_ID;
    try {
      // Act
      const run = await cli(
        'status',
        '--secret-id',
        seeded.arn,
        '--endpoint-url',
        stack.secretsManagerUrl,
        '--region',
        'us-east-1',
        '--credentials-secret-id',
        CREDENTIALS_SECRET_NAME,
      );
      const noCredentials = await cli('status', '--secret-id', seeded.name, '--endpoint-url', stack.secretsManagerUrl);
      // Assess
      expect(run.code).toBe(1);
      expect(run.out).toContain(
        `fix: npm run cli -- recover --secret-id ${seeded.arn} --credentials-secret-id ${CREDENTIALS_SECRET_NAME} --endpoint-url ${stack.secretsManagerUrl} --region us-east-1 --yes`,
      );
      // No rotation function is attached to ask: status still shows the versions, and names the flags.
      expect(noCredentials.code).toBe(3);
      expect(noCredentials.out).toContain('Verdict: credentials-unknown (exit 3)');
      expect(noCredentials.out).toContain(`fix: npm run cli -- status --secret-id ${seeded.name} --endpoint-url ${stack.secretsManagerUrl} --credentials-secret-id <id>`);
      expect(noCredentials.out).toMatch(/AWSCURRENT +\S+ +\S{4}/);
    } finally {
      process.env.AWS_ENDPOINT_URL_SECRETS_MANAGER = saved.endpoint;
      process.env.STYTCH_CREDENTIALS_SECRET_ID = saved.credentials;
    }
  });

  it('reports a missing secret and a wrong endpoint as access errors (exit 3) that say what to check', async () => {
    const missing = await cli('status', '--secret-id', 'cli/no-such-secret');
    const unreachable = await cli('status', '--secret-id', 'x', '--endpoint-url', 'http://127.0.0.1:9', '--json');
    expect(missing.code).toBe(3);
    expect(missing.err).toContain('Secrets Manager has no secret cli/no-such-secret');
    expect(unreachable.code).toBe(3);
    expect(JSON.parse(unreachable.out)).toMatchObject({ exitCode: 3, error: expect.stringContaining('could not be reached') });
  });

  it('runs as a real process (npx tsx cli/main.ts) through AWS_ENDPOINT_URL_SECRETS_MANAGER with dummy AWS credentials', async () => {
    // Prepare
    const seeded = await seedWithRotation();
    await runSteps(seeded, []);
    // Act
    const s = await child('npx', ['tsx', 'cli/main.ts', 'status', '--secret-id', seeded.name], childEnv());
    const r = await child('npx', ['tsx', 'cli/main.ts', 'recover', '--secret-id', seeded.name, '--yes'], childEnv());
    // Assess
    expect(s.code).toBe(1);
    expect(s.out).toContain('Verdict: pending-without-value (exit 1)');
    expect(s.out).toContain(`fix: npm run cli -- recover --secret-id ${seeded.name} --yes`);
    expectConsistent(seeded, r);
  });

  it('runs as the built bin (dist/cli/index.mjs), naming itself in the commands it prints', async () => {
    const seeded = await seed();
    extraSecrets.push(stack.stytch.adminRotateStart(seeded.clientId));
    stack.stytch.adminRotate(seeded.clientId);
    const run = await child(process.execPath, ['dist/cli/index.mjs', 'status', '--secret-id', seeded.name, '--json'], childEnv());
    expect(run.code).toBe(2);
    expect(JSON.parse(run.out)).toMatchObject({ verdict: 'drift', exitCode: 2 });
    expect(run.out).toContain('stytch-secret-rotation rotate --secret-id');
  });
});

describe('CLI against the local stack: the state table (binding, lease)', () => {
  it('status shows "not bound yet" before the first rotation and the binding it made afterwards', async () => {
    // Prepare
    const seeded = await seed();
    // Act
    const before = await cli('status', '--secret-id', seeded.name);
    await stack.rotate(seeded.name);
    const after = await status(seeded.name);
    // Assess
    expect(before.code).toBe(0);
    expect(before.out).toMatch(new RegExp(`^Binding\\s+not bound yet \\(the next rotation binds it to client ${seeded.clientId} of project ${stack.project.projectId}\\)$`, 'm'));
    expect(after).toMatchObject({ code: 0, verdict: 'consistent' });
    expect(after.state).toMatchObject({
      table: STATE_TABLE_NAME,
      known: true,
      binding: { clientId: seeded.clientId, projectId: stack.project.projectId, credentialsSecretId: null, boundAt: expect.stringMatching(/^\d{4}-/) },
      lease: null,
      retirement: null,
    });
  });

  it('dead-pending: a pending copy of AWSCURRENT is named as such, and recover removes its AWSPENDING label', async () => {
    // Prepare: someone put the current value again as AWSPENDING (the function refuses such a version).
    const seeded = await seed();
    await stack.rotate(seeded.name);
    const version = randomUUID();
    await stack.sm.handle('PutSecretValue', { SecretId: seeded.name, ClientRequestToken: version, SecretString: currentValue(seeded.name), VersionStages: ['AWSPENDING'] });
    // Act
    const s = await status(seeded.name);
    const recover = await cli('recover', '--secret-id', seeded.name, '--yes');
    // Assess
    expect(s).toMatchObject({ code: 1, verdict: 'dead-pending' });
    expect(s.versions.AWSPENDING).toMatchObject({ versionId: version, value: 'copy of AWSCURRENT' });
    expect(s.verdicts[0]!.summary).toContain('is a copy of AWSCURRENT (the same client_secret');
    expect(recover.out).toContain(`Remove AWSPENDING from version ${version}: done`);
    expectConsistent(seeded, recover);
  });

  it('binding mismatch: status shows it; bind shows old and new and changes nothing without --yes, stops while a lease is held, and rebinds with --yes', async () => {
    // Prepare: two bound secrets; then the first one's value is overwritten with the second one's client.
    const first = await seed();
    const second = await seed();
    await stack.rotate(first.name);
    await stack.rotate(second.name);
    await stack.sm.handle('PutSecretValue', { SecretId: first.name, ClientRequestToken: randomUUID(), SecretString: currentValue(second.name), VersionStages: ['AWSCURRENT'] });
    // Act + Assess: status
    const mismatch = await status(first.name);
    expect(mismatch).toMatchObject({ code: 1, verdict: 'binding-mismatch', client: { id: second.clientId } });
    expect(mismatch.verdicts.map((v) => v.code)).toEqual(['binding-mismatch']);
    expect(mismatch.verdicts[0]!.summary).toContain(`is bound to client ${first.clientId} of project ${stack.project.projectId}, but its AWSCURRENT value names client ${second.clientId}`);
    expect(mismatch.verdicts[0]!.fix.command).toBe(`npm run cli -- bind --secret-id ${first.name}`);
    expect(mismatch.verdicts[0]!.fix.explanation).toContain(`npm run cli -- bind --secret-id ${first.name} --yes`);
    // recover refuses to act on another client than the bound one (VII).
    const recover = await cli('recover', '--secret-id', first.name, '--yes');
    expect(recover.out).toContain('Nothing for recover to do.');
    // bind without --yes: a dry run.
    const dryRun = await cli('bind', '--secret-id', first.name);
    expect(dryRun.code).toBe(0);
    expect(dryRun.out).toMatch(new RegExp(`^Bound now\\s+client ${first.clientId}, project ${stack.project.projectId}, the function's default credentials, since `, 'm'));
    expect(dryRun.out).toMatch(new RegExp(`^New binding\\s+client ${second.clientId}, project ${stack.project.projectId}, the function's default credentials$`, 'm'));
    expect(dryRun.out).toContain(`client ${second.clientId} is bound to secret ${second.arn} now`);
    expect(dryRun.out).toContain(`Dry run: nothing was changed. Bind with: npm run cli -- bind --secret-id ${first.name} --yes`);
    expect((await status(first.name)).verdict).toBe('binding-mismatch');
    // bind --yes while the function holds the new client's lease: it waits, then stops naming the holder.
    const held = await holdLease(second.arn, second.clientId, 'createSecret of version held-by-the-test');
    const shown = await status(first.name);
    const refused = await cliWith(fastClock(), 'bind', '--secret-id', first.name, '--yes');
    await held.release();
    expect(shown.state).toMatchObject({ lease: { holder: 'test/held-on-purpose', what: 'createSecret of version held-by-the-test', held: true } });
    expect(refused.code).toBe(3);
    expect(refused.err).toContain(`Waiting up to 10 s for the lease on Stytch client ${second.clientId}`);
    expect(refused.err).toContain(
      `bind changed nothing: the lease on Stytch client ${second.clientId} is still held after 10 s, by test/held-on-purpose (createSecret of version held-by-the-test)`,
    );
    expect((await status(first.name)).verdict).toBe('binding-mismatch');
    // bind --yes once the lease is free: rebinds.
    const bound = await cli('bind', '--secret-id', first.name, '--yes');
    expect(bound.code).toBe(0);
    expect(bound.out).toContain(`Bound secret ${first.name} to client ${second.clientId}`);
    expect(bound.out).toContain(`Secret ${second.arn} is no longer bound`);
    const firstAfter = await status(first.name);
    const secondAfter = await status(second.name);
    expect(firstAfter).toMatchObject({ code: 0, verdict: 'consistent', state: { binding: { clientId: second.clientId }, lease: null } });
    expect(secondAfter).toMatchObject({ code: 1, verdict: 'binding-mismatch' });
    expect(secondAfter.verdicts[0]!.summary).toContain(`which is bound to another secret (${first.arn})`);
    // The rebound secret rotates its new client.
    const rotate = await cli('rotate', '--secret-id', first.name, '--wait');
    expect(rotate.code).toBe(0);
    expect(rotate.out).toContain('Verdict: consistent (exit 0)');
    expect(stack.stytch.isAccepted(second.clientId, versions(first.name).current.secret!)).toBe(true);
    // The client set free keeps a marker: only an administrator binds it again (VII).
    expect(await clientItem(first.clientId)).toMatchObject({ unbound_at: { S: expect.any(String) } });
    expect((await clientItem(first.clientId))?.secret_arn).toBeUndefined();
  });

  it('recover --yes waits for a lease held by a rotation step and acts once it is given back', async () => {
    // Prepare: half-done (finishSecret moved AWSCURRENT, Stytch refused rotate), and a step holds the client's lease.
    const seeded = await seedWithRotation();
    stack.stytch.addFault({ operation: 'connected_app.rotate', mode: 'before', status: 400, errorType: 'injected_fault' });
    await expect(runSteps(seeded, ['createSecret', 'setSecret', 'testSecret', 'finishSecret'])).rejects.toThrow(/injected_fault/);
    const held = await holdLease(seeded.arn, seeded.clientId, 'finishSecret of version held-by-the-test');
    // Act
    const shown = await cli('status', '--secret-id', seeded.name);
    const running = cli('recover', '--secret-id', seeded.name, '--yes');
    await new Promise((resolve) => setTimeout(resolve, 300));
    const stateWhileHeld = stack.stytch.clientState(seeded.clientId);
    await held.release();
    const recover = await running;
    // Assess
    expect(shown.out).toMatch(/^Lease\s+held by test\/held-on-purpose \(finishSecret of version held-by-the-test\) until \d{4}-\d\d-\d\dT[\d:]+Z$/m);
    expect(stateWhileHeld.nextClientSecretLast4).toBe(versions(seeded.name).current.secret!.slice(-4));
    expect(recover.err).toContain(`Waiting up to 10 s for the lease on Stytch client ${seeded.clientId}: test/held-on-purpose holds it (finishSecret of version held-by-the-test)`);
    expect(recover.out).toMatch(/Complete the rotation at Stytch \(rotate\).*: done/);
    expectConsistent(seeded, recover);
  });

  it('recover --yes stops after waiting 10 s for a lease that stays held, naming the holder and changing nothing (exit 3)', async () => {
    // Prepare
    const seeded = await seedWithRotation();
    stack.stytch.addFault({ operation: 'connected_app.rotate', mode: 'before', status: 400, errorType: 'injected_fault' });
    await expect(runSteps(seeded, ['createSecret', 'setSecret', 'testSecret', 'finishSecret'])).rejects.toThrow(/injected_fault/);
    const before = stack.stytch.clientState(seeded.clientId);
    const held = await holdLease(seeded.arn, seeded.clientId, 'finishSecret of version held-by-the-test');
    stack.stytch.resetRequests();
    // Act
    const recover = await cliWith(fastClock(), 'recover', '--secret-id', seeded.name, '--yes');
    await held.release();
    // Assess
    expect(recover.code).toBe(3);
    expect(recover.err).toContain(
      `recover changed nothing: the lease on Stytch client ${seeded.clientId} is still held after 10 s, by test/held-on-purpose (finishSecret of version held-by-the-test)`,
    );
    expect(recover.err).toContain('status shows the lease');
    expect(stack.stytch.clientState(seeded.clientId)).toEqual(before);
    expect(stack.stytch.requests.filter((r) => r.operation !== 'connected_app.get')).toEqual([]);
    expectCurrentAccepted(seeded);
    // The fix still works once the lease is free.
    expectConsistent(seeded, await cli('recover', '--secret-id', seeded.name, '--yes'));
  });

  it('without a state table, status says the binding and window are unknown and how to name the table; recover --yes refuses (exit 3)', async () => {
    // Prepare
    const seeded = await seed();
    await stack.rotate(seeded.name);
    const noTable: Partial<Runtime> = { env: { ...process.env, ROTATION_STATE_TABLE: undefined } };
    // Act
    const human = await cliWith(noTable, 'status', '--secret-id', seeded.name);
    const json = await status(seeded.name, noTable);
    const named = await cliWith(noTable, 'status', '--secret-id', seeded.name, '--state-table', STATE_TABLE_NAME);
    const wrong = await cliWith(noTable, 'status', '--secret-id', seeded.name, '--state-table', 'no-such-table');
    const recover = await cliWith(noTable, 'recover', '--secret-id', seeded.name, '--yes');
    const recoverWrong = await cliWith(noTable, 'recover', '--secret-id', seeded.name, '--yes', '--state-table', 'no-such-table');
    // Assess
    expect(human.code).toBe(0);
    expect(human.out).toMatch(/^Binding\s+unknown: no state table is named\. Name the function's state table with --state-table NAME or ROTATION_STATE_TABLE/m);
    expect(human.out).toMatch(/^Window\s+unknown$/m);
    expect(json.state).toEqual({ table: null, known: false, reason: expect.stringContaining('--state-table NAME') });
    expect(named.out).toMatch(new RegExp(`^Binding\\s+client ${seeded.clientId}, `, 'm'));
    expect(wrong.code).toBe(0);
    expect(wrong.out).toContain('unknown: the state table no-such-table could not be read: The state table no-such-table does not exist');
    expect(recover.code).toBe(3);
    expect(recover.err).toContain("recover --yes needs the function's state table, and none is named");
    expect(recoverWrong.code).toBe(3);
    expect(recoverWrong.err).toContain('The state table no-such-table does not exist');
  });
});

describe('CLI against the local stack: the overlap window (PREVIOUS_SECRET_GRACE_SECONDS=3600)', () => {
  const HOUR_MS = 3_600_000;
  let mainStack: LocalStack;
  let savedEnv: NodeJS.ProcessEnv;
  let firstName = 0;

  beforeAll(async () => {
    // A second stack with an overlap window; the environment (endpoints, window) is the main stack's again afterwards.
    savedEnv = { ...process.env };
    mainStack = stack;
    firstName = seededNames.length;
    stack = await LocalStack.start({ graceSeconds: 3600 });
  });

  afterAll(async () => {
    // Its secrets join the leak check at the end, which reads the main stack.
    for (const name of seededNames.splice(firstName)) {
      for (const v of Object.values(stack.sm.inspect(name).versions)) {
        if (v.secretString) extraSecrets.push((JSON.parse(v.secretString) as { client_secret: string }).client_secret);
      }
    }
    extraSecrets.push(stack.project.secret);
    await stack.close();
    stack = mainStack;
    for (const key of Object.keys(process.env)) if (!(key in savedEnv)) delete process.env[key];
    Object.assign(process.env, savedEnv);
  });

  /** Moves the client's retirement due time, as if that much time had passed. */
  async function windowEndsAt(clientId: string, dueAt: number): Promise<void> {
    await stack.dynamo.handle('UpdateItem', {
      TableName: STATE_TABLE_NAME,
      Key: { pk: { S: clientKey({ projectId: stack.project.projectId, clientId }) } },
      UpdateExpression: 'SET retire_due = :due',
      ConditionExpression: 'attribute_exists(retire_due)',
      ExpressionAttributeValues: { ':due': { N: String(dueAt) } },
    });
  }

  it('status exits 0 in the overlap window, showing until when the previous secret is accepted; recover leaves it alone; a late sweep is named; after the sweep it is consistent', async () => {
    // Prepare
    const seeded = await seed();
    const old = versions(seeded.name).current;
    const started = Date.now();
    await stack.rotate(seeded.name);
    const finished = Date.now();
    // Act + Assess: inside the window
    const inWindow = await status(seeded.name);
    const human = await cli('status', '--secret-id', seeded.name);
    const recover = await cli('recover', '--secret-id', seeded.name, '--yes');
    const dueAt = Date.parse(inWindow.state.known ? inWindow.state.retirement!.dueAt : '');
    expect(inWindow).toMatchObject({ code: 0, exitCode: 0, verdict: 'overlap-window' });
    expect(inWindow.verdicts.map((v) => v.code)).toEqual(['overlap-window']);
    expect(dueAt).toBeGreaterThanOrEqual(started + HOUR_MS - 1_000);
    expect(dueAt).toBeLessThanOrEqual(finished + HOUR_MS);
    expect(inWindow.state).toMatchObject({ retirement: { versionId: versions(seeded.name).current.id, previousVersionId: old.id, previousLast4: old.secret!.slice(-4) } });
    const until = inWindow.state.known ? inWindow.state.retirement!.dueAt : '';
    expect(human.code).toBe(0);
    expect(human.out).toContain(`overlap-window: Previous secret accepted until ${until}`);
    expect(human.out).toMatch(new RegExp(`^Window\\s+previous secret …${old.secret!.slice(-4)} \\(version ${old.id}\\) accepted until ${until}`, 'm'));
    expect(recover.out).toContain('Nothing for recover to do.');
    expect(stack.stytch.isAccepted(seeded.clientId, old.secret!)).toBe(true);
    expectCurrentAccepted(seeded);
    // The window ended a minute ago: still healthy, the next sweep retires it.
    await windowEndsAt(seeded.clientId, Date.now() - 60_000);
    const ended = await status(seeded.name);
    expect(ended).toMatchObject({ code: 0, verdict: 'overlap-window' });
    expect(ended.verdicts[0]!.summary).toContain('The overlap window ended at');
    // Twenty minutes after its end with no sweep: late, and retire is named. (The CLI counts time by AWS's
    // clock, read from the answers' Date header: a skewed local clock would not show it late.)
    await windowEndsAt(seeded.clientId, Date.now() - 20 * 60_000);
    const late = await status(seeded.name, clockAhead(-40 * 60_000));
    expect(late).toMatchObject({ code: 1, verdict: 'retirement-overdue' });
    expect(late.verdicts[0]!.summary).toContain('the retirement sweep is late or failing');
    expect(late.verdicts[0]!.fix.command).toBe(`npm run cli -- retire --secret-id ${seeded.name} --yes`);
    // The sweep retires it.
    await stack.sweep();
    const swept = await cli('status', '--secret-id', seeded.name);
    expectConsistent(seeded, swept);
    expect(swept.out).toMatch(/^Window\s+none/m);
    expect(stack.stytch.isAccepted(seeded.clientId, old.secret!)).toBe(false);
  });

  it('retire --yes retires the previous secret before the window ends: Stytch rejects it, AWSCURRENT still works, the record is cleared', async () => {
    // Prepare
    const seeded = await seed('m2m');
    const old = versions(seeded.name).current;
    await stack.rotate(seeded.name);
    const current = versions(seeded.name).current;
    // Act
    const dryRun = await cli('retire', '--secret-id', seeded.name);
    const acceptedAfterDryRun = stack.stytch.isAccepted(seeded.clientId, old.secret!);
    const retire = await cli('retire', '--secret-id', seeded.name, '--yes');
    const again = await cli('retire', '--secret-id', seeded.name, '--yes');
    // Assess
    expect(dryRun.code).toBe(0);
    expect(dryRun.out).toMatch(/^Previous\s+…\S{4} is kept by the overlap window until \d{4}-/m);
    expect(dryRun.out).toContain('Planned (dry run: nothing was changed):');
    expect(dryRun.out).toContain(`Apply with: npm run cli -- retire --secret-id ${seeded.name} --yes`);
    expect(acceptedAfterDryRun).toBe(true);
    expect(retire.code).toBe(0);
    expect(retire.out).toContain(`Retired …${old.secret!.slice(-4)}: Stytch accepts only AWSCURRENT (…${current.secret!.slice(-4)}) now`);
    expect(stack.stytch.isAccepted(seeded.clientId, old.secret!)).toBe(false);
    expect(stack.stytch.isAccepted(seeded.clientId, current.secret!)).toBe(true);
    expect(versions(seeded.name).current.id).toBe(current.id);
    expectConsistent(seeded, retire);
    expect(Object.keys((await clientItem(seeded.clientId)) ?? {}).filter((k) => k.startsWith('retire_') || k.startsWith('lease_'))).toEqual([]);
    expect(again.code).toBe(0);
    expect(again.out).toContain('Nothing to retire');
    // The sweep has nothing left to do for it.
    await stack.sweep();
    expectCurrentAccepted(seeded);
  });

  it("retire never completes at Stytch when Stytch's next secret is not AWSCURRENT's, and refuses under drift", async () => {
    // Prepare: an orphan next secret (started by hand), and a drifted client.
    const orphaned = await seed();
    await stack.rotate(orphaned.name);
    await cli('retire', '--secret-id', orphaned.name, '--yes');
    extraSecrets.push(stack.stytch.adminRotateStart(orphaned.clientId));
    const orphanState = stack.stytch.clientState(orphaned.clientId);
    const drifted = await seed();
    extraSecrets.push(stack.stytch.adminRotateStart(drifted.clientId));
    stack.stytch.adminRotate(drifted.clientId);
    stack.stytch.resetRequests();
    // Act
    const orphan = await cli('retire', '--secret-id', orphaned.name, '--yes');
    const drift = await cli('retire', '--secret-id', drifted.name, '--yes');
    // Assess
    expect(orphan.code).toBe(0);
    expect(orphan.out).toContain(`Nothing to retire: Stytch's current secret is AWSCURRENT's`);
    expect(orphan.out).toContain(`its next secret (…${orphanState.nextClientSecretLast4}) is not AWSCURRENT's, so retire leaves it alone`);
    expect(stack.stytch.clientState(orphaned.clientId)).toEqual(orphanState);
    expect(drift.code).toBe(2);
    expect(drift.err).toContain('retire changes nothing: AWSCURRENT');
    expect(stack.stytch.requests.filter((r) => /rotate/.test(r.operation))).toEqual([]);
    expectCurrentAccepted(orphaned);
  });
});

describe('CLI output', () => {
  it('never contains a full secret: client secrets of every version, orphans, or the project secret (invariant V)', () => {
    // Prepare
    const secrets = new Set<string>([stack.project.secret, ...extraSecrets]);
    for (const name of seededNames) {
      for (const v of Object.values(stack.sm.inspect(name).versions)) {
        if (v.secretString) secrets.add((JSON.parse(v.secretString) as { client_secret: string }).client_secret);
      }
    }
    const haystack = printed.join('\n');
    // Assess
    expect(printed.length).toBeGreaterThan(50);
    expect(secrets.size).toBeGreaterThan(20);
    expect([...secrets].filter((secret) => haystack.includes(secret))).toEqual([]);
  });
});
