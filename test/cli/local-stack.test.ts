import { execFile, execSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../cli/cli.js';
import type { StatusJson } from '../../cli/render.js';
import { CREDENTIALS_SECRET_NAME, LocalStack, type SeededSecret } from '../../infra/local/stack.js';

/**
 * The CLI against the local stack (both emulators on loopback, the BUILT
 * function as the rotation Lambda): for each state of DESIGN.md §4, put the
 * stack in it with the emulators' outside actions or by running some steps,
 * then check what status reports (verdict, fix, exit code) and that recover
 * leaves AWSCURRENT accepted by Stytch. Commands run in-process through
 * runCli, and a few times as real child processes. Every line any of them
 * printed is checked for secrets at the end (invariant V).
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

async function cli(...argv: string[]): Promise<Run> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(argv, { io: { out: (line) => out.push(line), err: (line) => err.push(line) } });
  printed.push(...out, ...err);
  return { code, out: out.join('\n'), err: err.join('\n') };
}

async function status(name: string): Promise<StatusJson & { code: number }> {
  const run = await cli('status', '--secret-id', name, '--json');
  return { ...(JSON.parse(run.out) as StatusJson), code: run.code };
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
    expect(s.versions.AWSPENDING).toMatchObject({ versionId: token, last4: s.stytch.nextLast4 });
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
    expect(s.stytch.nextLast4).toBe(s.versions.AWSCURRENT!.last4);
    expect(dryRun.code).toBe(1);
    expect(dryRun.out).toContain('Planned actions (dry run: nothing was changed):');
    expect(dryRun.out).toContain('Complete the rotation at Stytch (rotate)');
    expect(stateAfterDryRun.nextClientSecretLast4).toBe(s.stytch.nextLast4);
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
    expect(s.stytch.nextLast4).toBe(orphan.slice(-4));
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
    expect(recover.out).toContain("retires Stytch's current secret");
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
    expect(run.out).toContain(`Rotation complete: AWSCURRENT is version ${now.current.id} (${now.current.secret!.slice(-4)}).`);
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
      expect(noCredentials.code).toBe(3);
      expect(noCredentials.err).toContain('--credentials-secret-id');
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
