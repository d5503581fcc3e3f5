import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../functions/lib/errors.js';
import { World } from '../helpers/world.js';

/**
 * Races between a project-secret rotation and someone in the Stytch
 * dashboard, forced with gates rather than left to timing. The fuzzer met the
 * first one by chance (fuzz/project-trial.ts, II-end): the pending secret
 * deleted after finishSecret checked it and before it moved AWSCURRENT.
 * Stytch has no precondition on the move, so the function cannot stop it;
 * what it must do is keep the one secret that still works (II), say so, and
 * refuse to go on until the operator fixes AWSCURRENT.
 */

let world: World;
const HOUR = 3_600_000;

afterEach(() => {
  // V: nothing printed or thrown holds a secret.
  if (world) expect(world.leaks()).toEqual([]);
});

const valueOf = (stage: string) => world.versionWith(stage)?.value as Record<string, string> | undefined;
const accepted = (secret: string) => world.stytch.isProjectSecretAccepted(world.project.projectId, secret);
const idsAtStytch = () => world.stytch.projectSecrets(world.project.projectId).map((s) => s.secretId).sort();
const creates = () => world.stytch.requests.filter((r) => r.operation === 'secrets.create').length;
/** The previous secret the state table's retirement record names, if any. */
const retirement = async () => ((await world.stateItem())?.retire_previous_secret_id as { S?: string } | undefined)?.S || undefined;

describe('Project secret: the pending secret deleted in the dashboard while finishSecret moves AWSCURRENT', () => {
  it('keeps the previous secret, the only one that works, reports it, and refuses to rotate until AWSCURRENT is fixed (II)', async () => {
    world = await new World({ kind: 'project_secret', env: { PREVIOUS_SECRET_GRACE_SECONDS: '3600' } }).init();
    const previous = { ...valueOf('AWSCURRENT')! };
    const token = await world.beginRotation();
    for (const step of ['createSecret', 'setSecret', 'testSecret'] as const) await world.invoke(step, token);
    const next = { ...valueOf('AWSPENDING')! };

    // finishSecret has checked Stytch; its move is held while the new secret is deleted in the dashboard.
    const move = world.pause((c) => c.operation === 'UpdateSecretVersionStage' && c.step === 'finishSecret');
    const finishing = world.invoke('finishSecret', token);
    const held = await move.reached;
    // The premise: finishSecret read the new secret at Stytch before this move, and found it.
    const checks = world.externalCalls.filter((c) => c.index < held.index && c.step === 'finishSecret' && c.operation === 'secrets.get');
    expect(checks.map((c) => c.result?.status)).toContain(200);
    world.stytch.deleteProjectSecret(world.project.projectId, next.secret_id!);
    move.release();
    await finishing;

    // AWSCURRENT now names a secret Stytch no longer has: only the previous one works, and it is kept.
    expect(valueOf('AWSCURRENT')?.secret_id).toBe(next.secret_id);
    expect(accepted(previous.secret!)).toBe(true);
    expect(await retirement()).toBe(previous.secret_id);

    // After the window, the sweep does not delete it: it says so at ERROR, naming it, and clears the record.
    world.advance(HOUR + 1000);
    const before = world.output.length;
    await world.sweep();
    expect(accepted(previous.secret!)).toBe(true);
    const kept = world.logRecords(world.output.slice(before)).filter((r) => String(r.message).startsWith("Not deleted: AWSCURRENT's secret_id"));
    expect(kept.map((r) => [r.level, r.previousSecretId])).toEqual([['ERROR', previous.secret_id]]);
    expect(String(kept[0]!.message)).toContain(`delete ${previous.secret_id} yourself`);
    const metrics = world.metricCounts(world.output.slice(before));
    expect(metrics.RetirementCleared).toBe(1);
    expect(metrics.PreviousSecretRetired).toBeUndefined();
    expect(await retirement()).toBeUndefined();

    // A new rotation is refused before anything is created, and says how to fix it.
    const stytchBefore = idsAtStytch();
    const createsBefore = creates();
    const again = await world.beginRotation();
    const refused = await world.invoke('createSecret', again).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(refused).toBeInstanceOf(InvalidInputError);
    expect(refused?.message).toContain(`Stytch has no secret ${next.secret_id} in project`);
    expect(refused?.message).toContain('Nothing was changed.');
    expect(creates()).toBe(createsBefore);
    expect(idsAtStytch()).toEqual(stytchBefore);
    expect(accepted(previous.secret!)).toBe(true);

    // The operator puts the working secret back as AWSCURRENT, as the message says; the next rotation completes.
    await world.sm.handle('UpdateSecretVersionStage', { SecretId: world.secretArn, VersionStage: 'AWSPENDING', RemoveFromVersionId: again });
    await world.sm.handle('PutSecretValue', { SecretId: world.secretArn, ClientRequestToken: randomUUID(), SecretString: JSON.stringify(previous) });
    await world.sm.handle('RotateSecret', { SecretId: world.secretArn });
    expect(world.sm.rotationHistory(world.secretArn).at(-1)?.outcome).toBe('succeeded');
    expect(accepted(valueOf('AWSCURRENT')!.secret!)).toBe(true);
    expect(valueOf('AWSCURRENT')?.secret_id).not.toBe(previous.secret_id);
  });
});
