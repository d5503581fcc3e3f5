import { afterEach, describe, expect, it } from 'vitest';
import { cliInWorld } from '../helpers/cli-in-process.js';
import { CREDENTIALS_SECRET, MANAGEMENT_SECRET, STATE_TABLE, World } from '../helpers/world.js';

/**
 * `status` for a rotated Stytch project secret (DESIGN.md §4b), run in process
 * against a World: versions by secret_id and last four, the project's secrets
 * as the management API lists them with their last use, which label holds
 * which, any secret no label holds, the deletion the sweep owes, and a verdict
 * with its exit code. Nothing is ever changed, and no secret is printed.
 */

let world: World;
const HOUR = 3_600_000;
const env = {
  STYTCH_CREDENTIALS_SECRET_ID: CREDENTIALS_SECRET,
  STYTCH_API_BASE_URL: 'http://127.0.0.1:9',
  ROTATION_STATE_TABLE: STATE_TABLE,
  STYTCH_MANAGEMENT_CREDENTIALS_SECRET_ID: MANAGEMENT_SECRET,
  STYTCH_MANAGEMENT_API_BASE_URL: 'http://127.0.0.1:9',
};
const status = (extra: string[] = [], runtimeEnv: Record<string, string> = env) =>
  cliInWorld(world, ['status', '--secret-id', world.secretName, ...extra], { env: runtimeEnv });

afterEach(() => {
  if (world) expect(world.leaks()).toEqual([]);
});

const noSecrets = (lines: string[]) => {
  const text = lines.join('\n');
  for (const secret of world.knownSecrets()) expect(text).not.toContain(secret);
};

describe('status of a project secret', () => {
  it('shows the versions, Stytch\'s secrets with the label that holds each, the window, and one held by no label', async () => {
    world = await new World({ kind: 'project_secret', env: { PREVIOUS_SECRET_GRACE_SECONDS: '3600' } }).init();
    const old = { ...world.projectSecret! };
    await world.sm.handle('RotateSecret', { SecretId: world.secretArn });
    const other = world.stytch.createProjectSecret(world.project.projectId);
    const current = world.versionWith('AWSCURRENT')!.value as Record<string, string>;
    const mutationsBefore = world.stytch.requests.filter((r) => r.operation === 'secrets.create' || r.operation === 'secrets.delete').length;

    const { code, out } = await status();
    expect(code).toBe(0);
    const text = out.join('\n');
    expect(text).toMatch(new RegExp(`^Secret demo/stytch-client: Stytch project secret of ${world.project.projectId} \\(${world.project.projectSlug}/test\\)$`, 'm'));
    expect(text).toMatch(new RegExp(`^ {2}AWSCURRENT +\\S+ {2}secret_id ${current.secret_id} {2}…${current.secret!.slice(-4)}$`, 'm'));
    expect(text).toMatch(new RegExp(`^ {2}AWSPREVIOUS +\\S+ {2}secret_id ${old.secret_id} {2}…${old.secret.slice(-4)}$`, 'm'));
    expect(text).toMatch(/^Stytch's secrets in \S+\/test \(4 of 50\):$/m);
    expect(text).toMatch(new RegExp(`^ {2}${current.secret_id} {2}…\\S{4} {2}created \\S+ {2}last used \\S+ {2}\\[AWSCURRENT\\]$`, 'm'));
    expect(text).toMatch(new RegExp(`^ {2}${old.secret_id} {2}…\\S{4} {2}created \\S+ {2}last used \\S+ {2}\\[AWSPREVIOUS; deleted after \\S+\\]$`, 'm'));
    expect(text).toMatch(new RegExp(`^ {2}${other.secretId} {2}…\\S{4} {2}created \\S+ {2}last used never {2}\\[no label\\]$`, 'm'));
    expect(text).toMatch(/^OK overlap-window: The previous secret \S+ keeps working until \S+; then the retirement sweep deletes it\.$/m);
    expect(text).toMatch(/^OK secrets-without-label: 2 of the project's secrets are held by no label of demo\/stytch-client/m);
    noSecrets(out);
    // Read only.
    expect(world.stytch.requests.filter((r) => r.operation === 'secrets.create' || r.operation === 'secrets.delete')).toHaveLength(mutationsBefore);
  });

  it('prints one JSON object with --json', async () => {
    world = await new World({ kind: 'project_secret', env: { PREVIOUS_SECRET_GRACE_SECONDS: '3600' } }).init();
    await world.sm.handle('RotateSecret', { SecretId: world.secretArn });
    const { code, out } = await status(['--json']);
    expect(code).toBe(0);
    const json = JSON.parse(out.join('\n')) as Record<string, unknown> & { stytchSecrets: Array<{ heldBy: string[] }>; verdicts: Array<{ code: string }> };
    expect(json.secret).toMatchObject({ name: 'demo/stytch-client', kind: 'project_secret' });
    expect(json.stytchSecrets.map((s) => s.heldBy.join(',')).sort()).toEqual(['', 'AWSCURRENT', 'AWSPREVIOUS']);
    expect(json.verdicts.map((v) => v.code)).toEqual(['overlap-window', 'secrets-without-label']);
    expect(json.exitCode).toBe(0);
    noSecrets(out);
  });

  it('exits 2 when Stytch no longer has AWSCURRENT\'s secret, naming the fix', async () => {
    world = await new World({ kind: 'project_secret' }).init();
    world.stytch.deleteProjectSecret(world.project.projectId, world.projectSecret!.secret_id);
    const { code, out } = await status();
    expect(code).toBe(2);
    expect(out.join('\n')).toMatch(/^OUTAGE current-not-at-stytch: Stytch has no secret \S+: AWSCURRENT's project secret was deleted, or its secret_id is wrong\. Apps that read it are failing\.$/m);
    expect(out.join('\n')).toMatch(/^ {2}fix: Put the secret and its secret_id together into demo\/stytch-client: aws secretsmanager put-secret-value --secret-id demo\/stytch-client --secret-string file:\/\/credentials\.json$/m);
  });

  it('flags a deletion the sweep is late with', async () => {
    world = await new World({ kind: 'project_secret', env: { PREVIOUS_SECRET_GRACE_SECONDS: '3600' } }).init();
    await world.sm.handle('RotateSecret', { SecretId: world.secretArn });
    world.advance(2 * HOUR);
    const { code, out } = await status();
    expect(code).toBe(1);
    expect(out.join('\n')).toMatch(/^ATTENTION retirement-overdue: The previous secret \S+ should have been deleted at \S+; the retirement sweep is late or failing\.$/m);
    await world.sweep();
    const after = await status();
    expect(after.code).toBe(0);
    expect(after.out.join('\n')).toMatch(/^OK consistent: AWSCURRENT is a secret Stytch has, nothing pending\.$/m);
  });

  it('flags a rotation that stopped part way', async () => {
    world = await new World({ kind: 'project_secret', env: { PREVIOUS_SECRET_GRACE_SECONDS: '3600' } }).init();
    await world.sm.handle('RotateSecret', { SecretId: world.secretArn });
    world.advance(2 * HOUR);
    const token = await world.beginRotation();
    await world.invoke('createSecret', token);
    const { code, out } = await status();
    expect(code).toBe(1);
    const text = out.join('\n');
    expect(text).toMatch(/^ATTENTION rotation-in-progress: AWSPENDING \(version \S+\) holds the new secret \S+: a rotation is under way, or stopped before finishSecret\.$/m);
  });

  it('says how to name the management key when none is known, still showing the versions (exit 3)', async () => {
    world = await new World({ kind: 'project_secret' }).init();
    const { STYTCH_MANAGEMENT_CREDENTIALS_SECRET_ID: _, ...withoutKey } = env;
    const { code, out } = await status([], withoutKey);
    expect(code).toBe(3);
    const text = out.join('\n');
    expect(text).toMatch(/^ {2}AWSCURRENT +\S+ {2}secret_id \S+ {2}…\S{4}$/m);
    expect(text).toMatch(/Stytch's secrets: unknown\. No Stytch management key is known, so the project's secrets cannot be listed\. Pass --management-credentials-secret-id ID/);
    // The flag works.
    const flagged = await status(['--management-credentials-secret-id', MANAGEMENT_SECRET], withoutKey);
    expect(flagged.code).toBe(0);
  });
});


describe('commands that act on a client, given a project secret', () => {
  it('retire, recover and bind say what to do instead, changing nothing (exit 3)', async () => {
    world = await new World({ kind: 'project_secret' }).init();
    const before = world.snapshot();
    for (const command of ['retire', 'recover', 'bind']) {
      const { code, err } = await cliInWorld(world, [command, '--secret-id', world.secretName, '--yes'], { env });
      expect(code).toBe(3);
      expect(err.join('\n')).toContain(
        `demo/stytch-client holds a Stytch project secret (it has a secret_id): ${command} acts on Connected App and M2M client secrets only. A project secret's previous secret is deleted by the retirement sweep`,
      );
    }
    expect(world.snapshot()).toEqual(before);
    expect(world.stytch.requests).toEqual([]);
  });
});
