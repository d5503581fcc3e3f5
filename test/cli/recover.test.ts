/**
 * recover's own output and effects, exactly, in process against the World's
 * emulators through the real SDK pipeline: what it prints for a dry run and
 * for --yes, what it changes at Stytch and in Secrets Manager, and its exit
 * code (that of the status after it).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { cliInWorld } from '../helpers/cli-in-process.js';
import { World } from '../helpers/world.js';

let world: World | undefined;
afterEach(() => {
  if (world) expect(world.leaks()).toEqual([]);
  world = undefined;
});

const cli = (w: World, argv: string[]) => cliInWorld(w, argv);

const four = (secret: string) => `…${secret.slice(-4)}`;
const stytchOps = (w: World) => w.stytch.requests.map((r) => r.operation).filter((o) => o !== 'connected_app.get');

describe('recover: dry run and --yes, exactly', () => {
  it('a consistent secret: nothing to do, exit 0, no change', async () => {
    const w = (world = await new World({ smTransport: 'sdk' }).init());
    const r = await cli(w, ['recover', '--secret-id', w.secretArn]);
    expect(r).toEqual({
      code: 0,
      out: [
        'Verdict: consistent (exit 0)',
        `  consistent: AWSCURRENT (${four(w.currentSecret())}) is Stytch's current secret; Stytch has no next secret and no rotation is pending.`,
        'Nothing for recover to do.',
      ],
      err: [],
    });
    expect(stytchOps(w)).toEqual([]);
  });

  it('an orphan, dry run: the plan and the command that applies it, nothing changed, exit 1', async () => {
    const w = (world = await new World({ smTransport: 'sdk' }).init());
    const orphan = w.stytch.adminRotateStart(w.client.client_id);
    w.stytch.resetRequests();
    const r = await cli(w, ['recover', '--secret-id', w.secretArn]);
    expect(r.code).toBe(1);
    expect(r.err).toEqual([]);
    expect(r.out.slice(2)).toEqual([
      'Planned actions (dry run: nothing was changed):',
      `  1. Cancel Stytch's next secret ${four(orphan)} (rotate/cancel); AWSCURRENT ${four(w.currentSecret())} keeps working`,
      `Apply them with: npm run cli -- recover --secret-id ${w.secretArn} --yes`,
    ]);
    expect(stytchOps(w)).toEqual([]);
    expect(w.stytch.isAccepted(w.client.client_id, orphan)).toBe(true);
  });

  it('an orphan, --yes: cancelled under the lease, then the status after it, exit 0', async () => {
    const w = (world = await new World({ smTransport: 'sdk' }).init());
    const orphan = w.stytch.adminRotateStart(w.client.client_id);
    w.stytch.resetRequests();
    const r = await cli(w, ['recover', '--secret-id', w.secretArn, '--yes']);
    expect(r.code).toBe(0);
    expect(r.out.slice(2, 6)).toEqual(['Applying:', `  1. Cancel Stytch's next secret ${four(orphan)} (rotate/cancel); AWSCURRENT ${four(w.currentSecret())} keeps working: done`, '', 'Status after recover:']);
    expect(r.out.at(-2)).toBe('Verdict: consistent (exit 0)');
    expect(stytchOps(w)).toEqual(['connected_app.rotate_cancel']);
    expect(w.stytch.isAccepted(w.client.client_id, orphan)).toBe(false);
  });

  it('a rotation in progress, --yes --cancel-rotation: cancelled at Stytch, then AWSPENDING removed; the dry run names --cancel-rotation in its command', async () => {
    const w = (world = await new World({ smTransport: 'sdk' }).init());
    const token = await w.beginRotation();
    for (const s of ['createSecret', 'setSecret', 'testSecret'] as const) await w.invoke(s, token);
    const pending = w.versionWith('AWSPENDING')!.value!.client_secret as string;
    const dry = await cli(w, ['recover', '--secret-id', w.secretArn, '--cancel-rotation']);
    expect(dry.out.at(-1)).toBe(`Apply them with: npm run cli -- recover --secret-id ${w.secretArn} --yes --cancel-rotation`);
    w.stytch.resetRequests();
    const r = await cli(w, ['recover', '--secret-id', w.secretArn, '--yes', '--cancel-rotation']);
    expect(r.code).toBe(0);
    expect(r.out.slice(2, 5)).toEqual([
      'Applying:',
      `  1. Cancel Stytch's next secret ${four(pending)} (rotate/cancel); AWSCURRENT ${four(w.currentSecret())} keeps working: done`,
      `  2. Remove AWSPENDING from version ${token}: done`,
    ]);
    expect(stytchOps(w)).toEqual(['connected_app.rotate_cancel']);
    expect(w.snapshot().versions[token]!.stages).toEqual([]);
  });

  it('a half-done rotation, --yes: completed at Stytch, and the state table told that no previous secret is left to retire', async () => {
    const w = (world = await new World({ smTransport: 'sdk' }).init());
    const token = await w.beginRotation();
    for (const s of ['createSecret', 'setSecret', 'testSecret'] as const) await w.invoke(s, token);
    w.interceptor = (c) => (c.operation === 'connected_app.rotate' ? { when: 'before', error: 503 } : undefined);
    await expect(w.invoke('finishSecret', token)).rejects.toThrow(/503/);
    w.interceptor = undefined;
    const previous = w.versionWith('AWSPREVIOUS')!.value!.client_secret as string;
    w.stytch.resetRequests();
    const r = await cli(w, ['recover', '--secret-id', w.secretArn, '--yes']);
    expect(r.out.slice(2)).toEqual(
      expect.arrayContaining([
        `  1. Complete the rotation at Stytch (rotate): ${four(w.currentSecret())} becomes its only secret, ${four(previous)} stops working: done`,
        'The state table records no previous secret to retire any more.',
      ]),
    );
    expect(stytchOps(w)).toEqual(['connected_app.rotate']);
    expect(w.stytch.isAccepted(w.client.client_id, previous)).toBe(false);
    expect(r.code).toBe(0);
  });

  it('prints its help, naming --yes and --cancel-rotation, with exit 0', async () => {
    const w = (world = await new World({ smTransport: 'sdk' }).init());
    const r = await cli(w, ['recover', '--help']);
    expect(r.code).toBe(0);
    expect(r.out.join('\n')).toMatch(/^Usage: .* recover --secret-id ID \[--yes\] \[--cancel-rotation\] \[options\]\n/);
    expect(r.out.join('\n')).toContain('If\nsomeone holds the lease, recover waits up to 10 s, then stops, naming the holder.');
  });
});
