import { execFile, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../cli/cli.js';
import type { StatusJson } from '../../cli/render.js';
import { CREDENTIALS_SECRET_NAME, LOCAL_FUNCTION_NAME, LOCAL_LAMBDA_ARN, LocalStack, type SeededSecret } from '../../infra/local/stack.js';
import { cliEnv } from '../helpers/aws-cli.js';
import { findAwsCli, toolGate } from '../helpers/moto.js';
import { startChild, stopChild, type Child } from '../integration/support.js';

/**
 * The operator's first steps, as a new user takes them, each against the
 * local stack: the CLI finds the stack from the shell the README and `npm run
 * serve` give (AWS_DEFAULT_REGION, no STYTCH_CREDENTIALS_SECRET_ID, no
 * ROTATION_STATE_TABLE); status shows what it can read when AWSCURRENT or the
 * project credentials are broken; rotate --wait reports the rotation before a
 * failing follow-up read; no SDK warning, and a closed pipe ends quietly;
 * --json on every command. Every line printed is checked for secrets.
 */

let stack: LocalStack;
let awsCli: string | undefined;
const printed: string[] = [];
const extraSecrets: string[] = [];

interface Run {
  code: number;
  out: string;
  err: string;
}

/** The CLI in-process, with the environment a new user's shell has (see shellEnv). */
async function cli(...argv: string[]): Promise<Run> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(argv, { io: { out: (line) => out.push(line), err: (line) => err.push(line) }, runtime: { env: shellEnv() } });
  printed.push(...out, ...err);
  return { code, out: out.join('\n'), err: err.join('\n') };
}

/**
 * What `npm run serve` tells a user to export, and nothing else: the region
 * only as AWS_DEFAULT_REGION, one endpoint for every service, no credentials
 * secret, no state table, no warning switch.
 */
function shellEnv(): Record<string, string> {
  return stack.shellEnv();
}

/** The built bin as a real process, in that shell. Asynchronous: the stack answers from this process. */
function bin(args: string[], env: Record<string, string> = shellEnv()): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['dist/cli/index.mjs', ...args], { env, timeout: 30_000 }, (error, stdout, stderr) => {
      printed.push(stdout, stderr);
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : -1) : 0, out: stdout, err: stderr });
    });
  });
}

let counter = 0;
async function seed(options: { kind?: 'connected_app' | 'm2m'; extraFields?: Record<string, unknown> } = {}): Promise<SeededSecret> {
  return await stack.seedSecret({ name: `operator/${options.kind ?? 'connected_app'}-${++counter}`, ...options });
}

/** A secret with rotation attached and one rotation done: bound in the state table, AWSPREVIOUS set. */
async function rotated(options: Parameters<typeof seed>[0] = {}): Promise<SeededSecret> {
  const seeded = await seed(options);
  await stack.rotate(seeded.name);
  return seeded;
}

function versionOf(name: string, stage: string): { id: string; last4: string | undefined } {
  const [id, v] = Object.entries(stack.sm.inspect(name).versions).find(([, v]) => v.stages.includes(stage))!;
  let last4: string | undefined;
  try {
    last4 = (JSON.parse(v.secretString ?? '') as { client_secret?: string }).client_secret?.slice(-4);
  } catch {
    last4 = undefined;
  }
  return { id, last4 };
}

/** Writes a value from outside, as someone with put-secret-value would. */
async function putValue(secretId: string, text: string): Promise<void> {
  await stack.sm.handle('PutSecretValue', { SecretId: secretId, ClientRequestToken: randomUUID(), SecretString: text });
}

const awsGate = toolGate('aws', await findAwsCli());

beforeAll(async () => {
  if (!existsSync('dist/rotate-stytch-secret/index.mjs') || !existsSync('dist/cli/index.mjs')) throw new Error('Run npm run build first (npm test does).');
  stack = await LocalStack.start();
  awsCli = await findAwsCli();
});

afterAll(async () => {
  await stack?.close();
});

describe('CLI: finding the stack from the shell serve prints', () => {
  it('status needs only AWS_DEFAULT_REGION and AWS_ENDPOINT_URL: the credentials secret and the state table come from the rotation function', async () => {
    // Prepare
    const seeded = await rotated();
    // Act: the built bin, in the user's shell (no AWS_REGION, STYTCH_CREDENTIALS_SECRET_ID or ROTATION_STATE_TABLE)
    const run = await bin(['status', '--secret-id', seeded.name]);
    // Assess
    expect(run.err).toBe(''); // no SDK Node-version warning either
    expect(run.code).toBe(0);
    expect(run.out).toContain(`Credentials  ${CREDENTIALS_SECRET_NAME} (from the STYTCH_CREDENTIALS_SECRET_ID of function ${LOCAL_LAMBDA_ARN})`);
    expect(run.out).toMatch(/^Binding +client connected-app-test-/m);
    expect(run.out).toContain('Verdict: consistent (exit 0)');
  });

  it('--function-name names the function when the secret has none attached', async () => {
    const seeded = await seed();
    const without = await cli('status', '--secret-id', seeded.name);
    const named = await cli('status', '--secret-id', seeded.name, '--function-name', LOCAL_FUNCTION_NAME);
    expect(without.code).toBe(3);
    expect(without.out).toContain('credentials-unknown');
    expect(without.out).toContain('The secret has no rotation function to ask.');
    expect(named.code).toBe(0);
    expect(named.out).toContain(`(from the STYTCH_CREDENTIALS_SECRET_ID of function ${LOCAL_FUNCTION_NAME})`);
    expect(named.out).toContain('not bound yet');
  });

  it("with AWSCURRENT broken, the credentials secret comes from the secret's binding in the state table", async () => {
    // Prepare: the value named its credentials secret, so its binding records it.
    const seeded = await rotated({ extraFields: { stytch_credentials_secret_id: CREDENTIALS_SECRET_NAME } });
    await putValue(seeded.name, '{"client_id": ');
    // Act
    const s = await cli('status', '--secret-id', seeded.name, '--json');
    // Assess
    const json = JSON.parse(s.out) as StatusJson;
    expect(json.credentials).toEqual({ id: CREDENTIALS_SECRET_NAME, source: "the secret's binding in the state table" });
    expect(json.client).toEqual({ id: seeded.clientId, kind: 'connected_app' });
    expect(json.stytch?.currentLast4).toBe(versionOf(seeded.name, 'AWSPREVIOUS').last4);
  });

  it('names AWS_DEFAULT_REGION when no region is set at all', async () => {
    const env = shellEnv();
    delete (env as Partial<typeof env>).AWS_DEFAULT_REGION;
    const run = await bin(['status', '--secret-id', 'x'], env);
    expect(run.code).toBe(3);
    expect(run.err).toBe('Error: No AWS region is set. Pass --region, set AWS_REGION or AWS_DEFAULT_REGION, or use a profile that has one.\n');
  });
});

describe('CLI: status shows what it can read, one verdict per problem', () => {
  it.skipIf(awsGate.skip)(
    awsGate.title('a non-JSON AWSCURRENT: exit 2, the versions and Stytch shown, and the exact command that restores AWSPREVIOUS, which works'),
    async () => {
      // Prepare
      const seeded = await rotated();
      const good = versionOf(seeded.name, 'AWSCURRENT');
      await putValue(seeded.name, 'not json at all');
      const broken = versionOf(seeded.name, 'AWSCURRENT');
      // Act
      const s = await cli('status', '--secret-id', seeded.name);
      const fix = `aws secretsmanager update-secret-version-stage --secret-id ${seeded.name} --version-stage AWSCURRENT --move-to-version-id ${good.id} --remove-from-version-id ${broken.id}`;
      // Assess
      expect(s.code).toBe(2);
      expect(s.out).toMatch(new RegExp(`^AWSCURRENT +${broken.id} +\\(not JSON\\)$`, 'm'));
      expect(s.out).toMatch(new RegExp(`^AWSPREVIOUS +${good.id} +${good.last4}$`, 'm'));
      expect(s.out).toMatch(new RegExp(`^Stytch +current secret +${good.last4}$`, 'm'));
      expect(s.out).toContain('Verdict: current-unusable (exit 2)');
      expect(s.out).toContain(`    fix: ${fix}`);
      expect(s.out).toContain('Stytch accepts it.');

      // The printed command, run as printed with the real AWS CLI, ends the outage.
      const words = fix.split(' ').slice(1);
      const done = await new Promise<Run>((resolve) =>
        execFile(awsGate.assert(), words, { env: { ...cliEnv(awsCli!), ...shellEnv() }, timeout: 60_000 }, (error, stdout, stderr) =>
          resolve({ code: error ? 1 : 0, out: stdout, err: stderr }),
        ),
      );
      expect(done.err).toBe('');
      const after = await cli('status', '--secret-id', seeded.name);
      expect(after.code).toBe(0);
      expect(after.out).toContain('Verdict: consistent (exit 0)');
    },
  );

  it('wrong project credentials: the stuck AWSPENDING is still named, with the credentials fix and the label removal (exit 1)', async () => {
    // Prepare: a rotation stuck before createSecret stored a value, then the credentials secret was overwritten.
    const seeded = await rotated();
    const pending = stack.sm.beginRotation(seeded.name);
    const credentials = versionOf(CREDENTIALS_SECRET_NAME, 'AWSCURRENT').id;
    await putValue(
      CREDENTIALS_SECRET_NAME,
      JSON.stringify({ project_id: stack.project.projectId, secret: 'secret-test-not-the-project-secret-xxxxxxxx', base_url: stack.stytchUrl }),
    );
    try {
      // Act
      const s = await cli('status', '--secret-id', seeded.name);
      const json = JSON.parse((await cli('status', '--secret-id', seeded.name, '--json')).out) as StatusJson;
      // Assess
      expect(s.code).toBe(1);
      expect(s.out).toMatch(new RegExp(`^AWSPENDING +${pending} +\\(no value\\)$`, 'm'));
      expect(s.out).toMatch(/^Stytch +current secret +\(not read\)$/m);
      expect(s.out).toContain('Verdict: credentials-broken, pending-without-value (exit 1)');
      expect(s.out).toContain(`fix: aws secretsmanager put-secret-value --secret-id ${CREDENTIALS_SECRET_NAME} --secret-string file://credentials.json`);
      expect(s.out).toContain(`fix: aws secretsmanager update-secret-version-stage --secret-id ${seeded.name} --version-stage AWSPENDING --remove-from-version-id ${pending}`);
      expect(json).toMatchObject({ stytch: null, verdict: 'credentials-broken', exitCode: 1 });
      expect(json.versions.AWSPENDING).toMatchObject({ versionId: pending, value: 'none' });
    } finally {
      await stack.sm.handle('UpdateSecretVersionStage', {
        SecretId: CREDENTIALS_SECRET_NAME,
        VersionStage: 'AWSCURRENT',
        MoveToVersionId: credentials,
        RemoveFromVersionId: versionOf(CREDENTIALS_SECRET_NAME, 'AWSCURRENT').id,
      });
    }
  });
});

describe('CLI: rotate --wait', () => {
  it("reports a completed rotation first, then the follow-up Stytch read's failure on its own", async () => {
    // Prepare: the CLI reads Stytch with credentials Stytch rejects; the function uses its own, good ones.
    const seeded = await rotated();
    await stack.sm.handle('CreateSecret', {
      Name: 'operator/stale-credentials',
      ClientRequestToken: randomUUID(),
      SecretString: JSON.stringify({ project_id: stack.project.projectId, secret: 'secret-test-revoked-long-ago-xxxxxxxxxxxx', base_url: stack.stytchUrl }),
    });
    // Act
    const run = await cli('rotate', '--secret-id', seeded.name, '--wait', '--credentials-secret-id', 'operator/stale-credentials');
    // Assess
    const current = versionOf(seeded.name, 'AWSCURRENT');
    const lines = run.out.split('\n');
    expect(lines[1]).toBe(`Rotation complete: AWSCURRENT is version ${current.id}.`);
    expect(run.err).toMatch(/^The rotation is complete, but reading Stytch afterwards failed: Stytch connected_app\.get failed: 401 unauthorized_credentials/);
    expect(run.out).toMatch(new RegExp(`^AWSCURRENT +${current.id} +${current.last4}$`, 'm'));
    expect(run.out).toContain('Verdict: credentials-broken (exit 1)');
    expect(run.code).toBe(1);
    expect(stack.stytch.isAccepted(seeded.clientId, JSON.parse(stack.sm.inspect(seeded.name).versions[current.id]!.secretString!).client_secret)).toBe(true);
  });

  it('piped into head -1: prints one line, finishes the rotation, and exits quietly (no EPIPE, no stack trace, no SDK warning)', async () => {
    // Prepare
    const seeded = await rotated();
    const before = versionOf(seeded.name, 'AWSCURRENT').id;
    // Act: read the first line, then close the pipe as head does.
    const child = spawn(process.execPath, ['dist/cli/index.mjs', 'rotate', '--secret-id', seeded.name, '--wait'], { env: shellEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let first = '';
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    await new Promise<void>((resolve) => {
      child.stdout.on('data', (chunk: Buffer) => {
        first += chunk.toString();
        if (first.includes('\n')) {
          child.stdout.destroy();
          resolve();
        }
      });
    });
    const code = await new Promise<number | null>((resolve) => child.once('close', (c) => resolve(c)));
    printed.push(first, stderr);
    // Assess
    expect(first.split('\n')[0]).toMatch(/^Rotation started: version [0-9a-f-]{36} of operator\//);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(versionOf(seeded.name, 'AWSCURRENT').id).not.toBe(before);
    expect(versionOf(seeded.name, 'AWSPREVIOUS').id).toBe(before);
  });
});

describe('CLI: wording and --json', () => {
  it('a rotation in progress promises no reattempt the stack does not run, and prints the command to abandon it', async () => {
    const seeded = await rotated();
    const token = stack.sm.beginRotation(seeded.name);
    for (const step of ['createSecret', 'setSecret'] as const) await stack.invoke({ Step: step, SecretId: seeded.arn, ClientRequestToken: token });
    const s = await cli('status', '--secret-id', seeded.name);
    expect(s.out).toContain('Verdict: rotation-in-progress (exit 1)');
    expect(s.out).not.toMatch(/next rotation window|reattempts it/);
    expect(s.out).toContain(`To abandon it now: npm run cli -- recover --secret-id ${seeded.name} --cancel-rotation --yes`);
    expect(await cli('recover', '--secret-id', seeded.name, '--cancel-rotation', '--yes')).toMatchObject({ code: 0 });
  });

  it('every command prints one JSON object with --json: what it did, the lines it wrote and its exit code', async () => {
    const seeded = await rotated();
    const runs = {
      status: await cli('status', '--secret-id', seeded.name, '--json'),
      recover: await cli('recover', '--secret-id', seeded.name, '--json'),
      retire: await cli('retire', '--secret-id', seeded.name, '--json'),
      bind: await cli('bind', '--secret-id', seeded.name, '--json'),
      rotate: await cli('rotate', '--secret-id', seeded.name, '--wait', '--json'),
    };
    const json = Object.fromEntries(Object.entries(runs).map(([name, run]) => [name, JSON.parse(run.out) as Record<string, unknown>]));
    expect(json.status).toMatchObject({ verdict: 'consistent', exitCode: 0 });
    expect(json.recover).toMatchObject({ command: 'recover', dryRun: true, planned: [], exitCode: 0 });
    expect(json.retire).toMatchObject({ command: 'retire', outcome: 'nothing', exitCode: 0 });
    expect(json.bind).toMatchObject({ command: 'bind', outcome: 'already-bound', exitCode: 0 });
    expect(json.rotate).toMatchObject({ command: 'rotate', outcome: 'completed', status: { verdict: 'consistent' }, exitCode: 0 });
    expect((json.rotate!.output as string[])[1]).toMatch(/^Rotation complete/);
    for (const [name, run] of Object.entries(runs)) expect(run.code, name).toBe(0);
  });
});

describe('CLI: status --all', () => {
  it('lists every secret of the function across ListSecrets pages, one line each, with a summary and the worst exit code', async () => {
    // Prepare: more than a page (100) of the function's secrets, one of them broken, and one secret of no function.
    const fleet: SeededSecret[] = [];
    for (let i = 0; i < 110; i++) fleet.push(await seed());
    await Promise.all(fleet.map((s) => stack.rotate(s.name, { rotateImmediately: false })));
    const broken = fleet[7]!;
    await putValue(broken.name, 'not json');
    const loose = await seed();
    // Act
    const text = await cli('status', '--all', '--function-name', LOCAL_FUNCTION_NAME, '--concurrency', '8');
    const json = JSON.parse((await cli('status', '--all', '--function-name', LOCAL_LAMBDA_ARN, '--json')).out) as {
      secrets: Array<{ name: string; clientKind: string; verdict: string; exitCode: number; lastRotated: string | null; nextRotation: string | null }>;
      summary: { total: number; byVerdict: Record<string, number> };
      exitCode: number;
    };
    // Assess
    const names = json.secrets.map((s) => s.name);
    for (const s of fleet) expect(names).toContain(s.name);
    expect(names).not.toContain(loose.name);
    expect(names).not.toContain(CREDENTIALS_SECRET_NAME);
    expect(json.summary.total).toBe(json.secrets.length);
    expect(json.secrets.find((s) => s.name === broken.name)).toMatchObject({ verdict: 'current-unusable', exitCode: 2, clientKind: 'connected_app' });
    expect(json.secrets.find((s) => s.name === fleet[0]!.name)).toMatchObject({ verdict: 'consistent', exitCode: 0, clientKind: 'connected_app', nextRotation: expect.any(String) });
    expect(json.exitCode).toBe(2);
    expect(text.code).toBe(2);
    expect(text.out).toMatch(new RegExp(`^${fleet[0]!.name} +connected_app +- +\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\dZ +consistent$`, 'm'));
    expect(text.out).toMatch(new RegExp(`^${json.summary.total} secrets rotated by ${LOCAL_FUNCTION_NAME}: .*\\d+ current-unusable.*\\. Worst exit code 2\\.$`, 'm'));
    expect(text.out).toMatch(new RegExp(`^${broken.name} +connected_app +.* current-unusable$`, 'm'));
  }, 60_000);

  it('needs --function-name (exit 3, usage)', async () => {
    const run = await cli('status', '--all');
    expect(run.code).toBe(3);
    expect(run.err).toContain('status --all needs --function-name NAME');
  });
});

describe('npm run serve prints what a new user pastes', () => {
  let serve: Child | undefined;
  afterAll(() => stopChild(serve));

  it('its export line and CLI lines work as printed in a fresh shell, with no SDK warning', async () => {
    // Prepare: the serve process without the warning switch the test runner sets.
    const env = { ...process.env };
    delete env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED;
    delete env.AWS_REGION;
    delete env.STYTCH_CREDENTIALS_SECRET_ID;
    delete env.ROTATION_STATE_TABLE;
    serve = startChild(process.execPath, ['--import', 'tsx', 'infra/local/demo.ts', '--serve', '--sm-port', '0', '--stytch-port', '0', '--sweep-seconds', '0'], { env });
    await serve.waitFor(/Rotations and sweeps, one line per step and per sweep:/, 60_000);
    const out = serve.stdout();
    const exportLine = /^ {2}(export AWS_ACCESS_KEY_ID=\S+ .*AWS_ENDPOINT_URL=\S+)$/m.exec(out)?.[1];
    const statusLine = /^ {2}(npm run -s cli -- status --secret-id demo\/stytch-client)$/m.exec(out)?.[1];
    expect(exportLine).toBeDefined();
    expect(statusLine).toBeDefined();
    // Act: a fresh shell with nothing but PATH and HOME, then the two lines as printed.
    const run = await new Promise<Run>((resolve) =>
      execFile('bash', ['-c', `${exportLine}\n${statusLine}`], { env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp' }, timeout: 60_000 }, (error, stdout, stderr) =>
        resolve({ code: error ? (typeof error.code === 'number' ? error.code : -1) : 0, out: stdout, err: stderr }),
      ),
    );
    printed.push(run.out, run.err);
    // Assess
    expect(run.err).toBe('');
    expect(run.code).toBe(0);
    expect(run.out).toContain('Secret       demo/stytch-client');
    expect(run.out).toContain('Verdict: consistent (exit 0)');
    expect(serve.output()).not.toMatch(/NodeVersionSupportWarning|node >=22/);
  }, 90_000);
});

describe('CLI output', () => {
  it('never contains a full secret (invariant V)', async () => {
    const secrets = [...(await stack.knownSecrets()).map((s) => s.value), ...extraSecrets];
    const text = printed.join('\n');
    expect(secrets.filter((secret) => text.includes(secret)).length).toBe(0);
  });
});
