/**
 * The demo a person runs first (`npm start`, `npm run serve`), as a child
 * process: its exit code, the report's key lines, the overlap window (the old
 * secret accepted after the rotation, rejected after the sweep), and that it
 * never prints a whole secret.
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

/** Whether UTC wall-clock time `a` ("HH:MM:SS[.s]") is at or after `b`, within a few hours of each other (across midnight too). */
function notBefore(a: string, b: string): boolean {
  const seconds = (t: string) => t.split(':').reduce((total, part) => total * 60 + Number(part), 0);
  const ahead = (seconds(a) - seconds(b) + 86_400) % 86_400;
  return ahead < 43_200;
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

  it('npm start: rotates the demo secret, shows the old secret still accepted through its window and retired by the sweep after it, exits 0, and shows secrets only as last fours', async () => {
    // Act: exactly what npm start runs after the build (default window: 3 s).
    const child = startChild('npx', ['tsx', 'infra/local/demo.ts', '--bundle', bundle.path], { env: envWithoutNoColor() });
    children.push(child);
    const { code } = await child.exited;

    // Assess: exit code and header
    const out = child.stdout();
    expect(code, child.output()).toBe(0);
    expect(out).toMatch(/^Stytch secret rotation on the local stack, with the built function \S+index\.mjs\n/);
    expect(out).toMatch(/^ {2}AWS {14}http:\/\/127\.0\.0\.1:\d+ {2}\(Secrets Manager, DynamoDB and Lambda emulators, one port\)$/m);
    expect(out).toMatch(/^ {2}Stytch {11}http:\/\/127\.0\.0\.1:\d+ {2}/m);
    expect(out).toMatch(/^ {2}Secret {11}demo\/stytch-client {2}\(Connected App connected-app-test-[0-9a-f-]{36}\)$/m);
    expect(out).toMatch(/^ {2}Overlap window {3}3 s: /m);

    // Assess: each step with its outcome and duration; finishSecret leaves Stytch's rotation open (no rotate)
    expect(out).toMatch(/^RotateSecret demo\/stytch-client: succeeded after 1 attempt$/m);
    for (const step of STEPS) expect(out).toMatch(new RegExp(`^ {2}${step}\\s+ok\\s+\\d+ ms$`, 'm'));
    const [rotationCalls, sweepCalls] = [...out.matchAll(/^ {2}Stytch calls: (.*)$/gm)].map((m) => m[1]);
    expect(rotationCalls).toMatch(/^rotate_start ×1, get ×\d+$/);
    expect(sweepCalls).toMatch(/\brotate ×1\b/);

    // Assess: Stytch's state before, during the window and after the sweep, as last fours
    const [, before4, rotatedCurrent4, swept4] = /^ {2}client_secret_last_four\s+(\S{4})\s+(\S{4})\s+(\S{4})$/m.exec(out) ?? [];
    const [, beforeNext, rotatedNext4, sweptNext] = /^ {2}next_client_secret_last_four\s+(\S+)\s+(\S+)\s+(\S+)$/m.exec(out) ?? [];
    expect(before4).toBeDefined();
    expect({ rotatedCurrent4, beforeNext, sweptNext }).toEqual({ rotatedCurrent4: before4, beforeNext: '-', sweptNext: '-' });
    expect(rotatedNext4).toBe(swept4);
    expect(swept4).not.toBe(before4);
    const versions =
      /^Secret versions before\n {2}([0-9a-f]{8}) {2}AWSCURRENT +client_secret …(\S{4})\nSecret versions after\n {2}([0-9a-f]{8}) {2}AWSCURRENT +client_secret …(\S{4})\n {2}([0-9a-f]{8}) {2}AWSPREVIOUS +client_secret …(\S{4})$/m.exec(out);
    expect(versions, out).not.toBeNull();
    const [, oldId, old4, newId, new4, previousId, previous4] = versions!;
    expect({ old4, new4, previous4, previousId }).toEqual({ old4: before4, new4: swept4, previous4: before4, previousId: oldId });
    expect(newId).not.toBe(oldId);

    // Assess: a sweep inside the window leaves the old secret alone; the sweep after it retires it, not before the window's end.
    const inside = /^ {2}(\d\d:\d\d:\d\d\.\d) {2}inside the window +ok +\d+ ms {2}nothing due; demo\/stytch-client …(\S{4}) in its window until (\d\d:\d\d:\d\d\.\d)$/m.exec(out);
    const after = /^ {2}(\d\d:\d\d:\d\d\.\d) {2}after the window +ok +\d+ ms {2}retired demo\/stytch-client …(\S{4}): Stytch rejects it$/m.exec(out);
    expect(inside, out).not.toBeNull();
    expect(after, out).not.toBeNull();
    const [, insideAt, insideOld4, until] = inside!;
    const [, afterAt, retired4] = after!;
    expect({ insideOld4, retired4 }).toEqual({ insideOld4: before4, retired4: before4 });
    expect(notBefore(insideAt!, until!)).toBe(false);
    expect(notBefore(afterAt!, until!)).toBe(true);
    expect(out).toMatch(/^ {2}waiting \d+\.\d s for the window to end$/m);

    // Assess: the verdict
    const verdict = out.slice(out.indexOf('Verdict\n')).split('\n').slice(1).filter((l) => l.startsWith('  '));
    expect(verdict).toEqual([
      '  ok    RotateSecret ran the four steps to the end',
      `  ok    the new AWSCURRENT (…${new4}) is accepted by Stytch, before and after the sweep`,
      `  ok    the old secret (…${old4}) is still accepted after the rotation, until ${until} UTC`,
      '  ok    a sweep inside the window leaves it accepted',
      `  ok    the sweep after the window retires it: Stytch rejects …${old4}`,
      '  ok    Stytch has no rotation in progress and holds AWSCURRENT as its secret',
      '  ok    AWSPREVIOUS holds the old value',
      '  ok    the other fields are unchanged (client_id, environment, owner)',
      '  ok    no AWSPENDING label is left',
      '  ok    exactly one rotate/start was accepted by Stytch',
      '  ok    the state table binds demo/stytch-client to its Stytch client, both ways',
      expect.stringMatching(/^ {2}ok {4}[1-9]\d* log lines, 0 contain a secret$/),
      expect.stringMatching(/^ {2}ok {4}the project secret in stytch\/project-credentials was rotated: a new Stytch secret \(secret-test-[0-9a-f-]{36}\)$/),
      '  ok    inside the 3 s window both project secrets work',
      '  ok    demo/stytch-client rotates again with the new project secret',
      "  ok    the sweep after the window deletes the old project secret; Stytch has only the new one",
      expect.stringMatching(/^ {2}ok {4}[1-9]\d* log lines in all, 0 contain a secret \(project secrets and the workspace key included\)$/),
    ]);
    // The project secret's part: both work inside the window, then the old one is deleted.
    expect(out).toMatch(/^ {2}RotateSecret succeeded: new secret_id secret-test-[0-9a-f-]{36} …\S{4}; old still accepted, new accepted$/m);
    expect(out).toMatch(/^ {2}\S+ {2}after the window {3}ok .* deleted the old project secret secret-test-[0-9a-f-]{36}$/m);
    const [, seconds] = /^PASS: the rotation is verified \((\d+\.\d) s\)\.$/m.exec(out) ?? [];
    // It waits out the 3 s window; the bound leaves room for a loaded CI machine.
    expect(Number(seconds)).toBeGreaterThanOrEqual(3);
    expect(Number(seconds)).toBeLessThan(15);

    // Assess: plain text, and secrets only as last fours
    expect(out).not.toMatch(/\u001b\[/);
    expect(out).not.toContain('FAIL');
    expect(secretLikeRuns(out)).toEqual([]);
    const fragments = [...out.matchAll(/…([A-Za-z0-9_-]*)/g)].map((m) => m[1]);
    expect(fragments.length).toBeGreaterThanOrEqual(8);
    expect(fragments.every((f) => f!.length === 4)).toBe(true);
  }, 60_000);

  it('npm run serve: tests both secrets\' configuration, logs each step and each sweep, keeps the old secret working through its window, retires it on the next sweep after, and stops cleanly on SIGINT', async () => {
    // Prepare: a 3 s window, swept every second.
    const child = spawnDemo(['--serve', '--sm-port', '0', '--stytch-port', '0', '--grace-seconds', '3', '--sweep-seconds', '1']);
    await child.waitFor(/Rotations and sweeps, one line per step and per sweep:\n/, 30_000);
    const banner = child.stdout();
    expect(banner).toMatch(/demo\/stytch-client\s+[0-9a-f]{8}\s+testSecret \(configuration test\)\s+ok\s+\d+ ms/);
    expect(banner).toMatch(/demo\/stytch-m2m\s+[0-9a-f]{8}\s+testSecret \(configuration test\)\s+ok\s+\d+ ms/);
    expect(banner).toMatch(/^ {2}Overlap window {3}3 s: /m);
    expect(banner).toMatch(/^ {2}Sweep {12}every 1 s, /m);
    const smUrl = /^ {2}AWS {14}(http:\/\/127\.0\.0\.1:\d+) {2}/m.exec(banner)![1]!;
    const stytchUrl = /^ {2}Stytch {11}(http:\/\/127\.0\.0\.1:\d+)$/m.exec(banner)![1]!;
    const clientId = /demo\/stytch-m2m {2}M2M client (m2m-client-test-[0-9a-f-]{36})$/m.exec(banner)![1]!;
    expect(banner).toContain(`aws --endpoint-url ${smUrl} secretsmanager rotate-secret --secret-id demo/stytch-client --rotation-lambda-arn arn:aws:lambda:`);
    expect(banner).toContain(`aws --endpoint-url ${smUrl} dynamodb scan --table-name stytch-secret-rotation-state`);
    expect(banner).toContain(`printf '%s' '{"source":"aws.events","detail-type":"Scheduled Event"}' > sweep-event.json`);
    expect(banner).toContain(`aws --endpoint-url ${smUrl} lambda invoke --function-name stytch-secret-rotation-local --payload fileb://sweep-event.json sweep-result.json`);
    expect(banner).toContain('--secret-id stytch/project-credentials --query SecretString --output text');
    // The timer sweeps from the start, and says so even when nothing is due.
    await child.waitFor(/retirement sweep +schedule +ok +\d+ ms {2}nothing due\n/);
    const sm = createSdkClient(smUrl);

    try {
      const old = JSON.parse((await sm.send(new GetSecretValueCommand({ SecretId: 'demo/stytch-m2m' }))).SecretString!) as { client_secret: string };
      const creds = JSON.parse((await sm.send(new GetSecretValueCommand({ SecretId: 'stytch/project-credentials' }))).SecretString!) as { project_id: string; secret: string };
      const stytchClient = async () => {
        const got = await fetch(`${stytchUrl}/v1/m2m/clients/${clientId}`, {
          headers: { authorization: `Basic ${Buffer.from(`${creds.project_id}:${creds.secret}`).toString('base64')}` },
        });
        return ((await got.json()) as { m2m_client: Record<string, unknown> }).m2m_client;
      };
      const token = (secret: string) =>
        fetch(`${stytchUrl}/v1/public/${creds.project_id}/oauth2/token`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({ grant_type: 'client_credentials', client_id: clientId, client_secret: secret }).toString(),
        }).then((r) => r.status);

      // Act: rotation is already attached, so no Lambda ARN is needed.
      const rotated = await sm.send(new RotateSecretCommand({ SecretId: 'demo/stytch-m2m' }));
      const outcome = await child.waitFor(/demo\/stytch-m2m\s+(rotated: .*)\n/);
      const current = JSON.parse((await sm.send(new GetSecretValueCommand({ SecretId: 'demo/stytch-m2m' }))).SecretString!) as { client_id: string; client_secret: string };

      // Assess: one line per step, then the outcome, which names the window's end
      for (const step of STEPS) {
        expect(child.stdout()).toMatch(new RegExp(`demo/stytch-m2m\\s+${rotated.VersionId!.slice(0, 8)}\\s+${step}\\s+ok\\s+\\d+ ms`));
      }
      const old4 = old.client_secret.slice(-4);
      const new4 = current.client_secret.slice(-4);
      const [, until] =
        /^rotated: AWSCURRENT …(?:\S{4}) accepted by Stytch; AWSPREVIOUS …(?:\S{4}) still accepted until (\d\d:\d\d:\d\d\.\d) \(overlap window\), then the sweep retires it; \d+ log lines so far, 0 contain a secret$/.exec(outcome[1]!) ?? [];
      expect(until, outcome[1]).toBeDefined();
      expect(outcome[1]).toContain(`AWSCURRENT …${new4} accepted by Stytch; AWSPREVIOUS …${old4} still accepted`);

      // Assess: inside the window both secrets authenticate (an app that cached the old one keeps working).
      expect(await token(current.client_secret)).toBe(200);
      expect(await token(old.client_secret)).toBe(200);
      expect(await stytchClient()).toMatchObject({ client_secret_last_four: old4, next_client_secret_last_four: new4 });

      // Act: the timer's first sweep after the window.
      const swept = await child.waitFor(/^(\d\d:\d\d:\d\d) retirement sweep +schedule +ok +\d+ ms {2}(retired demo\/stytch-m2m .*)$/m, 20_000);

      // Assess: the old secret is rejected, the new one works, and Stytch has no rotation in progress.
      expect(swept[2]).toBe(`retired demo/stytch-m2m …${old4}: Stytch rejects it`);
      expect(notBefore(swept[1]!, until!.slice(0, 8))).toBe(true);
      expect(await token(old.client_secret)).toBe(401);
      expect(await token(current.client_secret)).toBe(200);
      expect(await stytchClient()).toMatchObject({ client_secret_last_four: new4, next_client_secret_last_four: null });

      // Act / Assess: Ctrl-C stops it cleanly; nothing printed held a whole secret.
      child.process.kill('SIGINT');
      expect(await child.exited).toEqual({ code: 0, signal: null });
      const out = child.stdout();
      expect(out).toMatch(/SIGINT: stopping the local stack\nstopped\n$/);
      expect(out).not.toMatch(/ failed /);
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

    it('exits 2 with the usage when npm start is given no window to show, or a sweep interval it does not use', async () => {
      // Act
      const noWindow = spawnDemo(['--grace-seconds', '0']);
      const sweepFlag = spawnDemo(['--sweep-seconds', '5']);
      const [noWindowExit, sweepFlagExit] = await Promise.all([noWindow.exited, sweepFlag.exited]);

      // Assess
      expect(noWindowExit.code).toBe(2);
      expect(noWindow.stdout()).toMatch(/^--grace-seconds must be a whole number of seconds from 1 to 604800, got 0\.\n\nUsage: /);
      expect(sweepFlagExit.code).toBe(2);
      expect(sweepFlag.stdout()).toMatch(/^--sweep-seconds only applies with --serve/);
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
        expect(out).toMatch(/^ {2}FAIL {2}the old secret \(…\S{4}\) is still accepted after the rotation: the state table records no retirement for it$/m);
        expect(out).toContain('  not run: the state table records no retirement for this secret');
        expect(out).toMatch(/^ {2}FAIL {2}the sweep after the window retires it: Stytch rejects …\S{4}: no sweep ran$/m);
        expect(out).toContain('  FAIL  no AWSPENDING label is left: a version still carries AWSPENDING');
        expect(out).toMatch(/^FAIL: \d+ of 17 checks failed \(\d+\.\d s\); see the FAIL lines above\.$/m);
        expect(secretLikeRuns(out)).toEqual([]);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }, 60_000);
  });
});
