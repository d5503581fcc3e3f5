/**
 * The operator CLI against the function's steps, at chosen interleavings
 * (World.pause), through the real SDK pipeline ('sdk' transport): leases
 * taken by an operator whose machine clock is minutes off (VI, I), a plan
 * made before the lease and applied after it (VI), and what an
 * administrator's rebinding leaves behind (VII).
 */
import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import type { Runtime } from '../../cli/context.js';
import { cliInWorld } from '../helpers/cli-in-process.js';
import { LAMBDA_ARN, World } from '../helpers/world.js';

let world: World;

afterEach(() => {
  // V: nothing printed or thrown by the function holds a secret.
  if (world) expect(world.leaks()).toEqual([]);
});

/** The CLI, run in process against the World's emulators, with its own (possibly wrong) clock. */
async function cli(argv: string[], runtime: Partial<Runtime> = {}) {
  const { code, out, err } = await cliInWorld(world, argv, runtime);
  const printed = [...out, ...err].join('\n');
  expect(world.knownSecrets().filter((s) => printed.includes(s))).toEqual([]);
  return { code, out: out.join('\n'), err: err.join('\n') };
}

const currentOf = (arn: string) =>
  JSON.parse(Object.values(world.sm.inspect(arn).versions).find((v) => v.stages.includes('AWSCURRENT'))!.secretString!) as Record<string, unknown>;

async function otherSecret(name: string, value: Record<string, unknown>): Promise<string> {
  const { ARN } = (await world.sm.handle('CreateSecret', { Name: name, ClientRequestToken: randomUUID(), SecretString: JSON.stringify(value) })) as { ARN: string };
  await world.sm.handle('RotateSecret', { SecretId: ARN, RotationLambdaARN: LAMBDA_ARN, RotationRules: { ScheduleExpression: 'rate(30 days)' }, RotateImmediately: false });
  return ARN;
}

const putCurrent = (arn: string, value: Record<string, unknown>) =>
  world.sm.handle('PutSecretValue', { SecretId: arn, ClientRequestToken: randomUUID(), SecretString: JSON.stringify(value) });

async function rotate(arn: string) {
  await world.sm.handle('RotateSecret', { SecretId: arn });
  return world.sm.rotationHistory(arn).at(-1)!;
}

describe('An operator whose clock is minutes off still takes turns with the function (VI): the CLI counts time by AWS\'s clock', () => {
  it('3 minutes behind: retire --yes holds a lease the next createSecret waits for, and AWSCURRENT keeps working', async () => {
    world = await new World({ smTransport: 'sdk', env: { PREVIOUS_SECRET_GRACE_SECONDS: '3600' } }).init();
    await rotate(world.secretArn); // an overlap window is open
    const current = world.currentSecret();
    const gate = world.pause((c) => c.service === 'stytch' && c.operation === 'connected_app.rotate' && c.invocation === undefined);
    const retire = cli(['retire', '--secret-id', world.secretArn, '--yes'], { now: () => world.clock.now() - 180_000, sleep: async () => undefined });
    await gate.reached;
    const token = await world.beginRotation();
    await expect(world.invoke('createSecret', token)).rejects.toThrow(/Another invocation holds the lease/);
    expect(world.metricCounts().LeaseExpired ?? 0).toBe(0);
    gate.release();
    // Its exit code is status's afterwards: 1, for the rotation begun meanwhile (AWSPENDING without a value yet).
    expect((await retire).out).toMatch(/Retired …\S{4}: Stytch accepts only AWSCURRENT/);
    expect(world.stytch.isAccepted(world.client.client_id, current)).toBe(true);
    await world.invoke('createSecret', token);
    expect(world.stytch.isAccepted(world.client.client_id, current)).toBe(true);
  });

  it('3 minutes ahead: recover --yes --cancel-rotation does not take over finishSecret\'s live lease, so it never cancels what finishSecret makes AWSCURRENT', async () => {
    world = await new World({ smTransport: 'sdk' }).init();
    const token = await world.beginRotation();
    for (const step of ['createSecret', 'setSecret', 'testSecret'] as const) await world.invoke(step, token);
    const move = world.pause((c) => c.operation === 'UpdateSecretVersionStage' && c.step === 'finishSecret');
    const finish = world.invoke('finishSecret', token);
    await move.reached;
    const r = await cli(['recover', '--secret-id', world.secretArn, '--yes', '--cancel-rotation'], { now: () => world.clock.now() + 180_000, sleep: async () => undefined });
    expect(r.code).toBe(3);
    expect(r.err).toMatch(/recover changed nothing: the lease on Stytch client .* is still held/);
    move.release();
    await finish;
    expect(world.versionWith('AWSCURRENT')!.id).toBe(token);
    expect(world.stytch.isAccepted(world.client.client_id, world.currentSecret())).toBe(true);
  });
});

describe('recover decides again under the lease (VI)', () => {
  it('leaves alone the rotation a createSecret completed while recover waited for the lease (no orphan to cancel, no empty version to clear)', async () => {
    world = await new World({ smTransport: 'sdk' }).init();
    const token = await world.beginRotation();
    const put = world.pause((c) => c.operation === 'PutSecretValue' && c.step === 'createSecret');
    const create = world.invoke('createSecret', token);
    await put.reached;
    let released = false;
    const r = await cli(['recover', '--secret-id', world.secretArn, '--yes'], {
      // recover waits for createSecret's lease; meanwhile createSecret stores its secret and ends.
      sleep: async (ms) => {
        if (!released) {
          released = true;
          put.release();
          await create;
        }
        world.advance(ms);
      },
    });
    // What it planned before the lease, and did not do once it decided again under it.
    expect(r.err).toMatch(/Cancel Stytch's next secret .*: not done: the state changed since the plan was made/);
    const version = world.snapshot().versions[token]!;
    expect(version.stages).toContain('AWSPENDING');
    expect(world.stytch.isAccepted(world.client.client_id, (JSON.parse(version.secretString!) as { client_secret: string }).client_secret)).toBe(true);
    for (const step of ['setSecret', 'testSecret', 'finishSecret'] as const) await world.invoke(step, token);
    expect(world.versionWith('AWSCURRENT')!.id).toBe(token);
  });
});

describe('recover checks again, right before each action, that what it decided on still holds (VI, I)', () => {
  it('does not cancel Stytch\'s next secret once AWSCURRENT was moved to it between recover\'s decision under the lease and its action', async () => {
    world = await new World({ smTransport: 'sdk' }).init();
    // An orphan next secret (started in the Stytch dashboard): recover plans to cancel it, AWSCURRENT being Stytch's current.
    const orphan = world.stytch.adminRotateStart(world.client.client_id);
    const current = world.currentSecret();
    // recover reads Stytch three times: for its plan, for its decision under the lease, and right before the action.
    // Between the second and the third, an operator puts the orphan into AWSCURRENT.
    let reads = 0;
    const decided = world.pause((c) => c.service === 'stytch' && c.invocation === undefined && c.operation.endsWith('.get') && ++reads === 2, 'after');
    const recover = cli(['recover', '--secret-id', world.secretArn, '--yes']);
    await decided.reached;
    await putCurrent(world.secretArn, { ...world.client, client_secret: orphan });
    decided.release();
    const r = await recover;

    expect(r.err).toMatch(
      new RegExp(
        `Cancel Stytch's next secret …${orphan.slice(-4)} \\(rotate/cancel\\); AWSCURRENT …${current.slice(-4)} keeps working: not done: ` +
          `Stytch's secrets \\(…${current.slice(-4)}, next …${orphan.slice(-4)}\\) or AWSCURRENT \\(…${orphan.slice(-4)}\\) changed\\. Nothing more was changed\\. Run status again: npm run cli -- status --secret-id ${world.secretArn.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`,
      ),
    );
    expect(world.stytch.requests.filter((q) => q.operation.endsWith('.rotate_cancel'))).toEqual([]);
    expect(world.stytch.isAccepted(world.client.client_id, orphan)).toBe(true);
    expect(world.stytch.isAccepted(world.client.client_id, world.currentSecret())).toBe(true);
  });

  it('does not complete at Stytch once AWSCURRENT was moved away from Stytch\'s next secret between the decision and the action', async () => {
    world = await new World({ smTransport: 'sdk' }).init();
    // Half-done: AWSCURRENT is Stytch's next secret (a rotation whose rotate was lost); recover plans rotate.
    const token = await world.beginRotation();
    for (const step of ['createSecret', 'setSecret', 'testSecret'] as const) await world.invoke(step, token);
    const old = world.currentSecret();
    await world.sm.handle('UpdateSecretVersionStage', {
      SecretId: world.secretArn,
      VersionStage: 'AWSCURRENT',
      MoveToVersionId: token,
      RemoveFromVersionId: world.versionWith('AWSCURRENT')!.id,
    });
    await world.sm.handle('UpdateSecretVersionStage', { SecretId: world.secretArn, VersionStage: 'AWSPENDING', RemoveFromVersionId: token });
    let reads = 0;
    const decided = world.pause((c) => c.service === 'stytch' && c.invocation === undefined && c.operation.endsWith('.get') && ++reads === 2, 'after');
    const recover = cli(['recover', '--secret-id', world.secretArn, '--yes']);
    await decided.reached;
    // An operator puts the old secret (still Stytch's current) back as AWSCURRENT: rotate would now reject it.
    await putCurrent(world.secretArn, { ...world.client, client_secret: old });
    decided.release();
    const r = await recover;

    expect(r.err).toMatch(/Complete the rotation at Stytch \(rotate\): …\S{4} becomes its only secret, …\S{4} stops working: not done: Stytch's next secret \(…\S{4}\) or AWSCURRENT \(…\S{4}\) changed\./);
    expect(world.stytch.requests.filter((q) => q.operation === 'connected_app.rotate')).toEqual([]);
    expect(world.stytch.isAccepted(world.client.client_id, old)).toBe(true);
  });
});

describe('What an administrator\'s rebinding sets free stays out of reach of a value writer (VII)', () => {
  it('the secret and the client a bind unbound are never bound again by a rotation, only by an administrator', async () => {
    world = await new World().init();
    const y = world.client; // S (world.secretArn) is bound to client Y
    await rotate(world.secretArn);
    const x = world.stytch.createConnectedApp(world.project.projectId, { clientType: 'first_party' });
    const t = await otherSecret('demo/t', { client_id: x.client_id, client_secret: x.client_secret });
    expect((await rotate(t)).outcome).toBe('succeeded'); // T is bound to X
    // The administrator moves S onto X: T and Y are set free.
    await putCurrent(world.secretArn, { client_id: x.client_id, client_secret: currentOf(t).client_secret });
    const bind = await cli(['bind', '--secret-id', world.secretArn, '--yes']);
    expect(bind.code).toBe(0);
    // T's value writer points T at Y: refused before any Stytch call.
    const yBefore = world.stytch.clientState(y.client_id);
    await putCurrent(t, { client_id: y.client_id, client_secret: 'does-not-know-it' });
    world.stytch.resetRequests();
    const outcome = await rotate(t);
    expect(outcome.outcome).toBe('failed');
    // Refused on either side: the client and the secret were both set free by the administrator.
    expect(outcome.attempts[0]?.steps[0]?.error).toMatch(/was unbound (from its Stytch client )?by an administrator .*(its rotations are refused until|only) an administrator binds it again/);
    expect(world.stytch.requests).toEqual([]);
    expect(world.stytch.clientState(y.client_id)).toEqual(yBefore);
    // A fresh secret naming Y cannot claim it either.
    const u = await otherSecret('demo/u', { client_id: y.client_id, client_secret: 'does-not-know-it-either' });
    expect(world.sm.rotationHistory(u).at(-1)?.attempts[0]?.steps[0]?.error).toMatch(/was unbound by an administrator .* only an administrator binds it again/);
    // The administrator can: bind T to Y explicitly.
    const again = await cli(['bind', '--secret-id', t, '--client-id', y.client_id, '--yes']);
    expect(again.code).toBe(0);
  });

  it('a secret whose rotation is configured (RotateImmediately=false) is bound at once: another secret\'s value cannot claim its client before its first rotation', async () => {
    world = await new World().init(); // configured, not rotated: its configuration test bound it
    const c = world.client;
    const u = await otherSecret('demo/unrelated', { client_id: 'connected-app-test-placeholder', client_secret: 'placeholder-secret' });
    await putCurrent(u, { client_id: c.client_id, client_secret: 'whatever-1234' });
    world.stytch.resetRequests();
    const res = await rotate(u);
    expect(res.outcome).toBe('failed');
    expect(res.attempts[0]?.steps[0]?.error).toMatch(/is bound to another secret/);
    expect(world.stytch.requests.filter((r) => /rotate/.test(r.operation))).toEqual([]);
    expect(world.stytch.isAccepted(c.client_id, c.client_secret)).toBe(true);
    expect((await rotate(world.secretArn)).outcome).toBe('succeeded');
  });
});
