import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { MANAGEMENT_SECRET, World, type WorldOptions } from '../helpers/world.js';

/**
 * The rotation of a Stytch project API secret (DESIGN.md §4b), through the
 * handler built from source, against the Stytch emulator's management API and
 * the Secrets Manager emulator: every branch of the four steps, the failure
 * policy, the sweep's deletion (put off once while the previous secret is
 * still used), and the records that keep a cancellation from ever deleting a
 * secret this function did not create (II).
 */

let world: World;
const HOUR = 3_600_000;
const make = async (options: WorldOptions = {}) =>
  (world = await new World({ kind: 'project_secret', ...options, env: { PREVIOUS_SECRET_GRACE_SECONDS: '3600', ...options.env } }).init());

afterEach(() => {
  // V: nothing printed or thrown holds a secret (every project secret and the workspace key are scanned for).
  if (world) expect(world.leaks()).toEqual([]);
});

const ps = () => world.projectSecret!;
const secretsAtStytch = () => world.stytch.projectSecrets(world.project.projectId).map((s) => s.secretId).sort();
const current = () => world.versionWith('AWSCURRENT')!.value as Record<string, string>;
const pending = () => world.versionWith('AWSPENDING')?.value as Record<string, string> | undefined;
const need = <T>(value: T | undefined): T => {
  expect(value).toBeDefined();
  return value!;
};
const accepted = (secret: string | undefined) => world.stytch.isProjectSecretAccepted(world.project.projectId, need(secret));
const fail = (run: Promise<unknown>) => run.then(() => undefined, (e: unknown) => e as Error);
const mutations = () => world.stytch.requests.filter((r) => r.operation === 'secrets.create' || r.operation === 'secrets.delete').map((r) => r.operation);
/** A request with the project secret, as an app that still uses it makes one (Stytch records the use). */
const useAtStytch = (secret: string) =>
  world.stytch.fetch(`http://127.0.0.1:9/v1/m2m/clients/${world.client.client_id}`, {
    headers: { authorization: `Basic ${Buffer.from(`${world.project.projectId}:${secret}`).toString('base64')}` },
  });

/** A whole rotation as Secrets Manager runs it (its driver removes AWSPENDING at the end). */
async function rotate(): Promise<void> {
  await world.sm.handle('RotateSecret', { SecretId: world.secretArn });
  expect(world.sm.rotationHistory(world.secretArn).at(-1)?.outcome).toBe('succeeded');
}

describe('Project secret: a whole rotation', () => {
  it('creates a new secret, moves AWSCURRENT, keeps the old one working for the window, and the sweep deletes it after', async () => {
    await make();
    const old = { ...ps() };
    // Written as text: a number with more digits than a double holds, spacing and key order stay exactly as they are.
    const originalText = `${JSON.stringify(old).slice(0, -1)}, "note" : 12345678901234567890,\n "base_url":"http://127.0.0.1:9"}`;
    await world.sm.handle('PutSecretValue', { SecretId: world.secretArn, ClientRequestToken: randomUUID(), SecretString: originalText });

    const token = await world.beginRotation();
    await world.invoke('createSecret', token);
    const pend = need(pending());
    expect(pend.secret_id).not.toBe(old.secret_id);
    expect(secretsAtStytch()).toContain(pend.secret_id);
    // Every other field is the same text: only secret and secret_id were replaced.
    const pendText = world.snapshot().versions[token]!.secretString!;
    expect(pendText).toBe(originalText.replace(JSON.stringify(old.secret), JSON.stringify(pend.secret)).replace(JSON.stringify(old.secret_id), JSON.stringify(pend.secret_id)));
    expect(pendText).toContain('12345678901234567890');

    await world.invoke('setSecret', token);
    await world.invoke('testSecret', token);
    await world.invoke('finishSecret', token);
    expect(world.versionWith('AWSCURRENT')!.id).toBe(token);
    // I: both work during the window.
    expect(accepted(pend.secret)).toBe(true);
    expect(accepted(old.secret)).toBe(true);
    expect(world.metricCounts()).toMatchObject({ RotationStarted: 1, RotationCompleted: 1 });

    await world.sweep();
    expect(accepted(old.secret)).toBe(true);
    world.advance(HOUR + 1000);
    await world.sweep();
    // III: retired after the window, and only that one.
    expect(accepted(old.secret)).toBe(false);
    expect(accepted(pend.secret)).toBe(true);
    expect(secretsAtStytch()).toEqual([world.project.secretId, pend.secret_id].sort());
    expect(mutations()).toEqual(['secrets.create', 'secrets.delete']);
    const metrics = world.metricCounts();
    expect(metrics.PreviousSecretRetired).toBe(1);
    expect(metrics.OrphanProjectSecret ?? 0).toBe(0);
    expect(metrics.PreviousSecretStillUsed ?? 0).toBe(0);
    expect(metrics.RotationCancelled ?? 0).toBe(0);
  });

  it('runs under Secrets Manager\'s own driver, twice in a row', async () => {
    await make();
    await world.sm.handle('RotateSecret', { SecretId: world.secretArn });
    world.advance(2 * HOUR);
    await world.sweep();
    await world.sm.handle('RotateSecret', { SecretId: world.secretArn });
    expect(world.sm.rotationHistory(world.secretArn).slice(-2).map((r) => r.outcome)).toEqual(['succeeded', 'succeeded']);
    world.advance(2 * HOUR);
    await world.sweep();
    // The world's credentials secret and AWSCURRENT's: nothing else is left behind.
    expect(secretsAtStytch()).toEqual([world.project.secretId, current().secret_id].sort());
  });

  it('with no overlap window, leaves the deletion to the next sweep rather than to finishSecret', async () => {
    await make({ env: { PREVIOUS_SECRET_GRACE_SECONDS: '0' } });
    const old = { ...ps() };
    await rotate();
    expect(accepted(old.secret)).toBe(true);
    await world.sweep();
    expect(accepted(old.secret)).toBe(false);
  });

  it('passes Secrets Manager\'s configuration test (RotateImmediately=false) without changing anything', async () => {
    await make();
    const token = await world.beginRotation();
    // The token version has no value: Secrets Manager's configuration test.
    await world.invoke('testSecret', token);
    expect(mutations()).toEqual([]);
    expect(world.stytch.requests.map((r) => r.operation)).toEqual(['secrets.get', 'm2m.get']);
  });
});

describe('Project secret: retries, resumes and twins (IV, VI)', () => {
  it('resumes a retried createSecret without creating a second secret', async () => {
    await make();
    const token = await world.beginRotation();
    await world.invoke('createSecret', token);
    await world.invoke('createSecret', token);
    expect(mutations()).toEqual(['secrets.create']);
    expect(world.metricCounts().RotationResumed).toBe(1);
  });

  it('serialises twin createSecrets on the lease: one secret is created', async () => {
    await make();
    const token = await world.beginRotation();
    const gate = world.pause((c) => c.operation === 'secrets.create');
    const first = world.invoke('createSecret', token);
    await gate.reached;
    // The twin runs while the first holds the lease in the middle of its create: it waits within its budget,
    // then fails as transient, having changed nothing.
    const error = await fail(world.invoke('createSecret', token));
    expect(error?.message).toMatch(/holds the lease/);
    expect(mutations()).toEqual([]);
    gate.release();
    await first;
    expect(mutations()).toEqual(['secrets.create']);
    expect(secretsAtStytch()).toHaveLength(3);
  });

  it('reports, and never deletes, a secret whose create answer was lost; the next attempt goes on', async () => {
    await make();
    // Secrets created well before the interrupted attempt are not suspects (they are outside its clock-skew margin).
    world.advance(5 * 60_000);
    const token = await world.beginRotation();
    world.interceptor = (c) => (c.operation === 'secrets.create' ? { when: 'after', error: 'drop' } : undefined);
    expect(await fail(world.invoke('createSecret', token))).toBeInstanceOf(Error);
    world.interceptor = undefined;
    const lost = secretsAtStytch().filter((id) => id !== world.project.secretId && id !== ps().secret_id);
    expect(lost).toHaveLength(1);

    await world.invoke('createSecret', token);
    expect(world.metricCounts().OrphanProjectSecret).toBe(1);
    const report = world.logRecords().find((r) => String(r.message).includes('interrupted while creating a project secret'));
    expect(JSON.stringify(report)).toContain(lost[0]);
    // II: not deleted by guesswork: it is still there, next to the one the retry created.
    expect(secretsAtStytch()).toContain(lost[0]);
    expect(pending()!.secret_id).not.toBe(lost[0]);
  });

  it('reports a secret an earlier request of a retried create made after all (its 429 came after the effect), never deleting it', async () => {
    await make();
    world.advance(5 * 60_000);
    const token = await world.beginRotation();
    // The first create takes effect and its answer is replaced by a 429: the client retries (a 429 is taken for
    // a refusal) and the second create answers. The first secret is recorded nowhere: only a report keeps it known (II).
    let creates = 0;
    world.interceptor = (c) => (c.operation === 'secrets.create' && ++creates === 1 ? { when: 'after', error: 429 } : undefined);
    await world.invoke('createSecret', token);
    world.interceptor = undefined;
    expect(creates).toBe(2);
    const stored = pending()!.secret_id;
    const unheld = secretsAtStytch().filter((id) => id !== world.project.secretId && id !== ps().secret_id && id !== stored);
    expect(unheld).toHaveLength(1);
    expect(world.metricCounts().OrphanProjectSecret).toBe(1);
    const report = world.logRecords().find((r) => String(r.message).startsWith('The request that created the project secret was sent more than once'));
    expect(report?.level).toBe('ERROR');
    expect(JSON.stringify(report?.secrets)).toContain(unheld[0]);
    expect(JSON.stringify(report?.secrets)).not.toContain(stored);
    // Reported, not deleted: the function cannot tell it from another team's.
    expect(mutations()).toEqual(['secrets.create', 'secrets.create']);
  });

  it('does not report anything when a create is retried after a real refusal', async () => {
    await make();
    world.advance(5 * 60_000);
    const token = await world.beginRotation();
    let creates = 0;
    world.interceptor = (c) => (c.operation === 'secrets.create' && ++creates === 1 ? { when: 'before', error: 429 } : undefined);
    await world.invoke('createSecret', token);
    world.interceptor = undefined;
    expect(creates).toBe(2);
    expect(world.metricCounts().OrphanProjectSecret ?? 0).toBe(0);
    expect(world.stytchCalls('secrets.list')).toHaveLength(1);
  });

  it('deletes its own recorded secret when the put did not land, and an unknown outcome on the next attempt', async () => {
    await make();
    const token = await world.beginRotation();
    world.interceptor = (c) => (c.operation === 'PutSecretValue' ? { when: 'before', error: 'InternalServiceError' } : undefined);
    expect(await fail(world.invoke('createSecret', token))).toBeInstanceOf(Error);
    world.interceptor = undefined;
    // The put failed and the read-back saw no value: the new secret was deleted at once (II: nobody holds it).
    expect(secretsAtStytch()).toEqual([world.project.secretId, ps().secret_id].sort());

    // Now the read-back fails too: the outcome is unknown, so the secret stays recorded ...
    let putFailed = false;
    world.interceptor = (c) => {
      if (c.operation === 'PutSecretValue') {
        putFailed = true;
        return { when: 'before', error: 'InternalServiceError' };
      }
      return c.operation === 'GetSecretValue' && putFailed ? { when: 'before', error: 'InternalServiceError' } : undefined;
    };
    expect(await fail(world.invoke('createSecret', token))).toBeInstanceOf(Error);
    world.interceptor = undefined;
    expect(secretsAtStytch()).toHaveLength(3);
    expect(world.metricCounts().PutOutcomeUnknown).toBe(1);
    // ... and the next attempt finds it unheld and deletes it as its own.
    await world.invoke('createSecret', token);
    expect(world.metricCounts().OrphanRepaired).toBe(1);
    expect(secretsAtStytch()).toEqual([world.project.secretId, ps().secret_id, pending()!.secret_id].sort());
  });
});

describe('Project secret: failures cancel cleanly, deleting only what this function created (II)', () => {
  it('deletes the new secret and removes AWSPENDING when the new secret does not authenticate', async () => {
    await make();
    const token = await world.beginRotation();
    await world.invoke('createSecret', token);
    await world.invoke('setSecret', token);
    const created = pending()!.secret_id;
    world.interceptor = (c) => (c.operation === 'm2m.get' ? { when: 'before', error: 403 } : undefined);
    const error = await fail(world.invoke('testSecret', token));
    world.interceptor = undefined;
    expect(error?.message).toMatch(/does not authenticate at Stytch's project API \(403/);
    expect(error?.message).toMatch(/The rotation was cancelled: Stytch's new secret .* was deleted and AWSPENDING was removed/);
    expect(secretsAtStytch()).not.toContain(created);
    expect(pending()).toBeUndefined();
    expect(current().secret_id).toBe(ps().secret_id);
    expect(world.metricCounts().RotationCancelled).toBe(1);
  });

  it('never deletes a secret a hostile AWSPENDING names, even one whose last four match', async () => {
    await make();
    // Another team's secret in the same project.
    const victim = world.stytch.createProjectSecret(world.project.projectId);
    const token = await world.beginRotation();
    await world.sm.handle('PutSecretValue', {
      SecretId: world.secretArn,
      ClientRequestToken: token,
      VersionStages: ['AWSPENDING'],
      SecretString: JSON.stringify({ ...ps(), secret_id: victim.secretId, secret: `forged-value-${victim.secret.slice(-4)}` }),
    });
    await world.invoke('createSecret', token); // "resumes": Stytch has that id with those last four
    await world.invoke('setSecret', token);
    const error = await fail(world.invoke('testSecret', token));
    expect(error?.message).toMatch(/does not authenticate/);
    expect(error?.message).toMatch(/AWSPENDING was removed/);
    expect(error?.message).not.toMatch(/was deleted/);
    expect(secretsAtStytch()).toContain(victim.secretId);
    expect(accepted(victim.secret)).toBe(true);
    expect(mutations()).toEqual([]);
    expect(world.logRecords().some((r) => String(r.message).includes('no record of creating it'))).toBe(true);
  });

  it('refuses a pending value whose secret_id and secret do not belong together, deleting nothing', async () => {
    await make();
    const token = await world.beginRotation();
    await world.sm.handle('PutSecretValue', {
      SecretId: world.secretArn,
      ClientRequestToken: token,
      VersionStages: ['AWSPENDING'],
      SecretString: JSON.stringify({ ...ps(), secret_id: world.project.secretId, secret: 'forged-value-zzzz' }),
    });
    const error = await fail(world.invoke('createSecret', token));
    expect(error?.message).toMatch(/AWSPENDING of demo\/stytch-client names secret_id .* but its secret ends …zzzz: the value was written outside this function\. Nothing was deleted/);
    expect(mutations()).toEqual([]);
  });

  it('refuses to start when AWSCURRENT\'s secret_id is not its secret at Stytch, changing nothing', async () => {
    await make();
    await world.sm.handle('PutSecretValue', { SecretId: world.secretArn, ClientRequestToken: randomUUID(), SecretString: JSON.stringify({ ...ps(), secret_id: world.project.secretId }) });
    const token = await world.beginRotation();
    const error = await fail(world.invoke('createSecret', token));
    expect(error?.message).toMatch(/Stytch's secret .* ends …\S{4}, but AWSCURRENT's secret ends …\S{4}, so the function cannot tell which secret AWSCURRENT is/);
    expect(error?.message).toMatch(/Nothing was changed\. Set secret_id in demo\/stytch-client/);
    expect(mutations()).toEqual([]);
  });

  it('says how to set up the management key when none is configured, changing nothing', async () => {
    await make({ env: { STYTCH_MANAGEMENT_CREDENTIALS_SECRET_ID: '' } });
    const token = await world.beginRotation();
    const error = await fail(world.invoke('createSecret', token));
    expect(error?.message).toMatch(/rotating one needs a workspace management key: store it as \{"workspace_key_id", "workspace_key_secret"\} in a secret and set STYTCH_MANAGEMENT_CREDENTIALS_SECRET_ID/);
    expect(world.stytch.requests).toEqual([]);
  });

  it('turns Stytch\'s limit of 50 secrets into a fix, creating nothing', async () => {
    await make();
    while (world.stytch.projectSecrets(world.project.projectId).length < 50) world.stytch.createProjectSecret(world.project.projectId);
    const token = await world.beginRotation();
    const error = await fail(world.invoke('createSecret', token));
    expect(error?.message).toMatch(/a project environment holds at most 50 secrets\. Nothing was changed\. Delete secrets no one uses/);
    expect(world.stytch.projectSecrets(world.project.projectId)).toHaveLength(50);
    expect(pending()).toBeUndefined();
    const item = await world.stateItem();
    expect(item?.created_version).toBeUndefined();
  });

  it('refuses a value that switches to another project environment (VII)', async () => {
    await make();
    await rotate();
    await world.sm.handle('PutSecretValue', { SecretId: world.secretArn, ClientRequestToken: randomUUID(), SecretString: JSON.stringify({ ...current(), project_slug: 'someone-else' }) });
    const token = await world.beginRotation();
    const error = await fail(world.invoke('createSecret', token));
    expect(error?.message).toMatch(/bound to/);
    expect(world.metricCounts().BindingRefused).toBe(1);
    expect(mutations()).toEqual(['secrets.create']);
  });
});

describe('Project secret: the sweep puts off deleting a secret still in use, once', () => {
  it('defers by the configured time when Stytch saw the previous secret used after the move, then deletes it', async () => {
    await make({ env: { PROJECT_SECRET_IN_USE_DEFER_SECONDS: '7200' } });
    const old = { ...ps() };
    await rotate();
    world.advance(HOUR + 1000);
    // An app that never re-read the secret still uses the old one.
    expect((await useAtStytch(old.secret)).status).toBe(200);
    await world.sweep();
    expect(accepted(old.secret)).toBe(true);
    expect(world.metricCounts()).toMatchObject({ PreviousSecretStillUsed: 1, RetirementDeferred: 1 });
    const warning = world.logRecords().find((r) => String(r.message).includes('still in use after AWSCURRENT moved'));
    expect(warning).toMatchObject({ level: 'WARN', previousSecretId: old.secret_id });
    expect(typeof warning?.lastUsedAt).toBe('string');

    world.advance(HOUR);
    await world.sweep();
    expect(accepted(old.secret)).toBe(true);
    world.advance(HOUR + 1000);
    await useAtStytch(old.secret);
    await world.sweep();
    // Deferred once only: deleted now, still in use or not.
    expect(accepted(old.secret)).toBe(false);
    expect(world.metricCounts()).toMatchObject({ PreviousSecretStillUsed: 2, PreviousSecretRetired: 1 });
  });

  it('does not count a use before the move, or one long ago, as still in use', async () => {
    await make();
    const old = { ...ps() };
    await useAtStytch(old.secret);
    await rotate();
    world.advance(HOUR + 1000);
    await world.sweep();
    expect(accepted(old.secret)).toBe(false);
    expect(world.metricCounts().PreviousSecretStillUsed ?? 0).toBe(0);
  });

  it('deletes the previous secret early when a new rotation starts inside the window', async () => {
    await make();
    const first = { ...ps() };
    await rotate();
    const second = { ...current() } as Record<string, string>;
    await rotate();
    expect(accepted(first.secret)).toBe(false);
    expect(accepted(second.secret)).toBe(true);
    expect(world.metricCounts().PreviousRetiredEarly).toBe(1);
    world.advance(HOUR + 1000);
    await world.sweep();
    expect(accepted(second.secret)).toBe(false);
    expect(secretsAtStytch()).toEqual([world.project.secretId, current().secret_id].sort());
  });

  it('deletes the previous secret early, not late, when a newer rotation\'s createSecret ran before the late finishSecret (II, III)', async () => {
    await make();
    const original = { ...ps() };
    // Rotation A moved AWSCURRENT, and the finishSecret that moved it ended before the deletion of the
    // original secret was recorded (half-done).
    const a = await world.beginRotation();
    await world.invoke('createSecret', a);
    await world.invoke('setSecret', a);
    await world.invoke('testSecret', a);
    const v0 = world.versionWith('AWSCURRENT')!.id;
    await world.sm.handle('UpdateSecretVersionStage', { SecretId: world.secretArn, VersionStage: 'AWSCURRENT', MoveToVersionId: a, RemoveFromVersionId: v0 });
    // A newer rotation B starts, and its createSecret runs first: it finds no deletion recorded to do early.
    const b = await world.beginRotation();
    await world.invoke('createSecret', b);
    // A's finishSecret comes late. Recording the deletion now would let B's finishSecret replace the record.
    await world.invoke('finishSecret', a);
    expect(accepted(original.secret)).toBe(false);
    expect(world.metricCounts()).toMatchObject({ PreviousRetiredEarly: 1 });
    expect(world.metricCounts().RetirementRecordedLate ?? 0).toBe(0);
    await world.invoke('setSecret', b);
    await world.invoke('testSecret', b);
    await world.invoke('finishSecret', b);
    world.advance(HOUR + 1000);
    await world.sweep();
    // Only the World's credentials secret and AWSCURRENT's are left: nothing held by no label.
    expect(secretsAtStytch()).toEqual([world.project.secretId, current().secret_id].sort());
  });

  it('still records the deletion late when no newer rotation has created anything yet (III)', async () => {
    await make();
    const original = { ...ps() };
    const a = await world.beginRotation();
    for (const step of ['createSecret', 'setSecret', 'testSecret'] as const) await world.invoke(step, a);
    const v0 = world.versionWith('AWSCURRENT')!.id;
    await world.sm.handle('UpdateSecretVersionStage', { SecretId: world.secretArn, VersionStage: 'AWSCURRENT', MoveToVersionId: a, RemoveFromVersionId: v0 });
    await world.invoke('finishSecret', a);
    expect(world.metricCounts().RetirementRecordedLate).toBe(1);
    // I: the window is kept; the sweep deletes it after.
    expect(accepted(original.secret)).toBe(true);
    world.advance(HOUR + 1000);
    await world.sweep();
    expect(accepted(original.secret)).toBe(false);
  });

  it('never deletes when AWSCURRENT was changed outside to a secret Stytch does not have (I)', async () => {
    await make();
    const old = { ...ps() };
    await rotate();
    // Someone deleted the new secret in the dashboard: the old one is the only one that works.
    world.stytch.deleteProjectSecret(world.project.projectId, need(current().secret_id));
    world.advance(HOUR + 1000);
    await world.sweep();
    expect(accepted(old.secret)).toBe(true);
    const record = world.logRecords().find((r) => String(r.message).startsWith('Not deleted: AWSCURRENT'));
    expect(record?.level).toBe('ERROR');
  });
});

describe('Project secret: the management key secret', () => {
  it('is read with the function\'s role and never changed', async () => {
    await make();
    const before = world.sm.inspect(MANAGEMENT_SECRET);
    await rotate();
    expect(world.sm.inspect(MANAGEMENT_SECRET)).toEqual(before);
  });
});
