/**
 * The demo a person runs first (`npm start`, `npm run serve`), as a child
 * process: its exit code, the report's key lines, and that it never prints
 * a whole secret.
 */
import { GetSecretValueCommand, RotateSecretCommand } from '@aws-sdk/client-secrets-manager';
import { randomUUID } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createSdkClient } from '../../infra/local/secrets-manager/index.js';
import { builtBundle, secretLikeRuns, startChild, stopChild, type Child } from './support.js';

const STEPS = ['createSecret', 'setSecret', 'testSecret', 'finishSecret'];

/** The environment without NO_COLOR: colours must be off because stdout is not a terminal. */
function envWithoutNoColor(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.NO_COLOR;
  delete env.FORCE_COLOR;
  return env;
}

describe('The local demo (infra/local/demo.ts)', () => {
  let bundle: Awaited<ReturnType<typeof builtBundle>>;
  const children: Child[] = [];
  const spawnDemo = (args: string[], env?: NodeJS.ProcessEnv) => {
    // A private copy of the bundle: a concurrent `npm run build` empties dist/ for a moment.
    const child = startChild(process.execPath, ['--import', 'tsx', 'infra/local/demo.ts', '--bundle', bundle.path, ...args], env ? { env } : {});
    children.push(child);
    return child;
  };

  beforeAll(async () => {
    bundle = await builtBundle();
  });

  afterEach(() => {
    for (const child of children.splice(0)) stopChild(child);
  });

  afterAll(() => bundle?.dispose());

  it('npm start: rotates the demo secret, prints a report where every check is ok, exits 0, and shows secrets only as last fours', async () => {
    // Act: exactly what npm start runs after the build.
    const child = startChild('npx', ['tsx', 'infra/local/demo.ts', '--bundle', bundle.path], { env: envWithoutNoColor() });
    children.push(child);
    const { code } = await child.exited;

    // Assess: exit code and header
    const out = child.stdout();
    expect(code, child.output()).toBe(0);
    expect(out).toMatch(/^Stytch secret rotation on the local stack, with the built function \S+index\.mjs\n/);
    expect(out).toMatch(/^ {2}Secrets Manager {2}http:\/\/127\.0\.0\.1:\d+ {2}/m);
    expect(out).toMatch(/^ {2}Stytch {11}http:\/\/127\.0\.0\.1:\d+ {2}/m);
    expect(out).toMatch(/^ {2}Secret {11}demo\/stytch-client {2}\(Connected App connected-app-test-[0-9a-f-]{36}\)$/m);

    // Assess: each step with its outcome and duration
    expect(out).toMatch(/^RotateSecret demo\/stytch-client: succeeded after 1 attempt$/m);
    for (const step of STEPS) expect(out).toMatch(new RegExp(`^ {2}${step}\\s+ok\\s+\\d+ ms$`, 'm'));
    expect(out).toMatch(/^ {2}Stytch calls: .*rotate_start ×1\b/m);

    // Assess: Stytch's state and the version stages, before and after, as last fours
    const [, before4, after4] = /^ {2}client_secret_last_four\s+(\S{4})\s+(\S{4})$/m.exec(out) ?? [];
    expect(before4).toBeDefined();
    expect(after4).not.toBe(before4);
    expect(out).toMatch(/^ {2}next_client_secret_last_four\s+-\s+-$/m);
    const versions =
      /^Secret versions before\n {2}([0-9a-f]{8}) {2}AWSCURRENT +client_secret …(\S{4})\nSecret versions after\n {2}([0-9a-f]{8}) {2}AWSCURRENT +client_secret …(\S{4})\n {2}([0-9a-f]{8}) {2}AWSPREVIOUS +client_secret …(\S{4})$/m.exec(out);
    expect(versions, out).not.toBeNull();
    const [, oldId, old4, newId, new4, previousId, previous4] = versions!;
    expect({ old4, new4, previous4, previousId }).toEqual({ old4: before4, new4: after4, previous4: before4, previousId: oldId });
    expect(newId).not.toBe(oldId);

    // Assess: the verdict
    const verdict = out.slice(out.indexOf('Verdict\n')).split('\n').slice(1).filter((l) => l.startsWith('  '));
    expect(verdict).toEqual([
      '  ok    RotateSecret ran the four steps to the end',
      `  ok    the old secret (…${before4}) is rejected by Stytch`,
      `  ok    the new AWSCURRENT (…${after4}) is accepted by Stytch`,
      '  ok    Stytch has no rotation in progress and holds AWSCURRENT as its secret',
      '  ok    AWSPREVIOUS holds the old value',
      '  ok    the other fields are unchanged (client_id, environment, owner)',
      '  ok    no AWSPENDING label is left',
      '  ok    exactly one rotate/start was accepted by Stytch',
      expect.stringMatching(/^ {2}ok {4}[1-9]\d* log lines, 0 contain a secret$/),
    ]);
    const [, seconds] = /^PASS: the rotation is verified \((\d+\.\d) s\)\.$/m.exec(out) ?? [];
    // The target is under 3 s; the bound leaves room for a loaded CI machine.
    expect(Number(seconds)).toBeLessThan(10);

    // Assess: plain text, and secrets only as last fours
    expect(out).not.toMatch(/\u001b\[/);
    expect(out).not.toContain('FAIL');
    expect(secretLikeRuns(out)).toEqual([]);
    const fragments = [...out.matchAll(/…([A-Za-z0-9_-]*)/g)].map((m) => m[1]);
    expect(fragments.length).toBeGreaterThanOrEqual(5);
    expect(fragments.every((f) => f!.length === 4)).toBe(true);
  }, 60_000);

  it('npm run serve: tests the configuration of both secrets, logs each step of a rotation as it happens, and stops cleanly on SIGINT', async () => {
    // Prepare
    const child = spawnDemo(['--serve', '--sm-port', '0', '--stytch-port', '0']);
    await child.waitFor(/Rotations, one line per step:\n/, 30_000);
    const banner = child.stdout();
    expect(banner).toMatch(/demo\/stytch-client\s+[0-9a-f]{8}\s+testSecret \(configuration test\)\s+ok\s+\d+ ms/);
    expect(banner).toMatch(/demo\/stytch-m2m\s+[0-9a-f]{8}\s+testSecret \(configuration test\)\s+ok\s+\d+ ms/);
    const smUrl = /^ {2}Secrets Manager {2}(http:\/\/127\.0\.0\.1:\d+)$/m.exec(banner)![1]!;
    const stytchUrl = /^ {2}Stytch {11}(http:\/\/127\.0\.0\.1:\d+)$/m.exec(banner)![1]!;
    const clientId = /demo\/stytch-m2m {2}M2M client (m2m-client-test-[0-9a-f-]{36})$/m.exec(banner)![1]!;
    expect(banner).toContain(`aws --endpoint-url ${smUrl} secretsmanager rotate-secret --secret-id demo/stytch-client --rotation-lambda-arn arn:aws:lambda:`);
    expect(banner).toContain('--secret-id stytch/project-credentials --query SecretString --output text');
    const sm = createSdkClient(smUrl);

    try {
      const old = JSON.parse((await sm.send(new GetSecretValueCommand({ SecretId: 'demo/stytch-m2m' }))).SecretString!) as { client_secret: string };

      // Act: rotation is already attached, so no Lambda ARN is needed.
      const rotated = await sm.send(new RotateSecretCommand({ SecretId: 'demo/stytch-m2m' }));
      const outcome = await child.waitFor(/demo\/stytch-m2m\s+(rotated: .*)\n/);

      // Assess: one line per step, then the outcome
      for (const step of STEPS) {
        expect(child.stdout()).toMatch(new RegExp(`demo/stytch-m2m\\s+${rotated.VersionId!.slice(0, 8)}\\s+${step}\\s+ok\\s+\\d+ ms`));
      }
      expect(outcome[1]).toMatch(/^rotated: AWSCURRENT …\S{4} accepted by Stytch; AWSPREVIOUS …\S{4} rejected; Stytch not rotating; \d+ log lines so far, 0 contain a secret$/);

      // Assess: the served Stytch agrees, over HTTP: GET with the project credentials, and the token endpoint.
      const current = JSON.parse((await sm.send(new GetSecretValueCommand({ SecretId: 'demo/stytch-m2m' }))).SecretString!) as { client_id: string; client_secret: string };
      const creds = JSON.parse((await sm.send(new GetSecretValueCommand({ SecretId: 'stytch/project-credentials' }))).SecretString!) as { project_id: string; secret: string };
      const got = await fetch(`${stytchUrl}/v1/m2m/clients/${clientId}`, {
        headers: { authorization: `Basic ${Buffer.from(`${creds.project_id}:${creds.secret}`).toString('base64')}` },
      });
      expect(((await got.json()) as { m2m_client: unknown }).m2m_client).toMatchObject({
        client_secret_last_four: current.client_secret.slice(-4),
        next_client_secret_last_four: null,
      });
      const token = (secret: string) =>
        fetch(`${stytchUrl}/v1/public/${creds.project_id}/oauth2/token`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({ grant_type: 'client_credentials', client_id: clientId, client_secret: secret }).toString(),
        }).then((r) => r.status);
      expect(await token(current.client_secret)).toBe(200);
      expect(await token(old.client_secret)).toBe(401);

      // Act / Assess: Ctrl-C stops it cleanly; nothing printed held a whole secret.
      child.process.kill('SIGINT');
      expect(await child.exited).toEqual({ code: 0, signal: null });
      const out = child.stdout();
      expect(out).toMatch(/SIGINT: stopping the local stack\nstopped\n$/);
      expect(secretLikeRuns(out)).toEqual([]);
      for (const secret of [old.client_secret, current.client_secret, creds.secret]) expect(out).not.toContain(secret);
    } finally {
      sm.destroy();
    }
  }, 60_000);

  describe('when it cannot run', () => {
    let blocker: Server | undefined;
    afterAll(() => blocker?.close());

    it('exits 1 and names the flags to use when a port is taken', async () => {
      // Prepare
      blocker = createServer();
      const port = await new Promise<number>((resolve) => blocker!.listen(0, '127.0.0.1', () => resolve((blocker!.address() as { port: number }).port)));

      // Act
      const child = spawnDemo(['--sm-port', String(port)]);
      const { code } = await child.exited;

      // Assess
      expect(code).toBe(1);
      expect(child.stdout()).toMatch(/^A port is already in use \(.*\)\. Choose others with --sm-port and --stytch-port \(0 = any free port\)\.$/m);
    }, 60_000);

    it('exits 1 and says which checks failed when the rotation fails, showing only the first line of each error', async () => {
      // Prepare: a stand-in for a broken build, failing createSecret with a two-line message.
      const dir = join(tmpdir(), `stytch-rotation-it-${randomUUID()}`);
      mkdirSync(dir);
      const stub = join(dir, 'index.mjs');
      writeFileSync(stub, "export const handler = async (event) => { if (event.Step === 'createSecret') throw new Error('Stytch answered 503\\nsecond line'); };\n");

      try {
        // Act
        const child = startChild(process.execPath, ['--import', 'tsx', 'infra/local/demo.ts', '--bundle', stub]);
        children.push(child);
        const { code } = await child.exited;

        // Assess
        const out = child.stdout();
        expect(code).toBe(1);
        expect(out).toMatch(/^RotateSecret demo\/stytch-client: failed after 3 attempts$/m);
        expect(out).toMatch(/^ {2}createSecret\s+failed\s+\d+ ms {2}Stytch answered 503$/m);
        expect(out).not.toContain('second line');
        expect(out).toContain('  FAIL  RotateSecret ran the four steps to the end: the rotation failed');
        expect(out).toMatch(/^ {2}FAIL {2}the old secret \(…\S{4}\) is rejected by Stytch: Stytch still accepts it$/m);
        expect(out).toContain('  FAIL  no AWSPENDING label is left: a version still carries AWSPENDING');
        expect(out).toMatch(/^FAIL: \d+ of 9 checks failed \(\d+\.\d s\); see the FAIL lines above\.$/m);
        expect(secretLikeRuns(out)).toEqual([]);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }, 60_000);
  });
});
