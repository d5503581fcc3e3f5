/**
 * The invariants of DESIGN.md §3 as checks on a World, and the ways the
 * reliability suites drive rotations the way Secrets Manager does.
 */
import type { RotationRecord } from '../../../infra/local/secrets-manager/index.js';
import type { ExternalCall, World } from '../../helpers/world.js';

export const last4 = (secret: string): string => secret.slice(-4);

export function currentVersion(world: World): { id: string; secret: string } {
  for (const [id, v] of Object.entries(world.snapshot().versions)) {
    if (v.stages.includes('AWSCURRENT')) return { id, secret: secretOf(v.secretString) ?? '' };
  }
  throw new Error('no AWSCURRENT version');
}

/** A version's client_secret, when its value is JSON holding one. */
export function secretOf(text: string | undefined): string | undefined {
  if (text === undefined) return undefined;
  try {
    const value = JSON.parse(text) as { client_secret?: unknown };
    return typeof value.client_secret === 'string' ? value.client_secret : undefined;
  } catch {
    return undefined;
  }
}

/** I: the value labelled AWSCURRENT is accepted by Stytch. */
export function currentAccepted(world: World): boolean {
  return world.stytch.isAccepted(world.client.client_id, currentVersion(world).secret);
}

/** The client secrets Secrets Manager holds under AWSCURRENT and AWSPENDING. */
export function heldSecrets(world: World): string[] {
  const held: string[] = [];
  for (const v of Object.values(world.snapshot().versions)) {
    if (!v.stages.includes('AWSCURRENT') && !v.stages.includes('AWSPENDING')) continue;
    const secret = secretOf(v.secretString);
    if (secret !== undefined) held.push(secret);
  }
  return held;
}

/** II: a next secret at Stytch that Secrets Manager does not hold (as AWSPENDING or AWSCURRENT); undefined when there is none. */
export function unheldNextSecret(world: World): string | undefined {
  const next = world.stytchState().nextClientSecretLast4;
  if (next === null) return undefined;
  return heldSecrets(world).some((s) => last4(s) === next) ? undefined : `Stytch's next secret (…${next}) is held by Secrets Manager neither as AWSPENDING nor as AWSCURRENT`;
}

/**
 * II, the other way round: with no rotation in progress at Stytch, its one secret must be held by Secrets
 * Manager (as AWSCURRENT or AWSPENDING). Removing AWSPENDING from a pending secret that Stytch has made
 * its current one (a dashboard rotate) loses it. Undefined when it is held.
 */
export function unheldCurrentSecret(world: World): string | undefined {
  const state = world.stytchState();
  if (state.nextClientSecretLast4 !== null || state.clientSecretLast4 === null) return undefined;
  const current = state.clientSecretLast4;
  return heldSecrets(world).some((s) => last4(s) === current) ? undefined : `Stytch's only secret (…${current}) is held by Secrets Manager neither as AWSPENDING nor as AWSCURRENT`;
}

/** The version labelled AWSPENDING that is not also AWSCURRENT: a rotation Secrets Manager considers unfinished. */
export function pendingToken(world: World): string | undefined {
  for (const [id, v] of Object.entries(world.snapshot().versions)) {
    if (v.stages.includes('AWSPENDING') && !v.stages.includes('AWSCURRENT')) return id;
  }
  return undefined;
}

/** rotate/start calls whose 200 answer reached the function (an accepted rotate/start), from a call index on. */
export function deliveredRotateStarts(world: World, from = 0, token?: string): ExternalCall[] {
  return world.externalCalls
    .slice(from)
    .filter((c) => c.operation.endsWith('.rotate_start') && c.result?.status === 200 && (token === undefined || c.token === token));
}

/** RotateSecret as a caller (or the schedule) sends it: the emulator's driver runs the steps and its in-window attempts. */
export async function rotateSecret(world: World): Promise<RotationRecord> {
  const { VersionId } = (await world.sm.handle('RotateSecret', { SecretId: world.secretArn })) as { VersionId: string };
  return recordOf(world, VersionId);
}

export function recordOf(world: World, token: string): RotationRecord {
  const record = world.sm.rotationHistory(world.secretArn).find((r) => r.token === token);
  if (!record) throw new Error(`no rotation record for ${token}`);
  return record;
}

/**
 * What Secrets Manager does after a failed rotation, window after window:
 * reattempt the unfinished rotation with its token while AWSPENDING marks
 * one; once the function has cleared AWSPENDING (or none is left), the next
 * scheduled rotation starts fresh. Stops at the first rotation that succeeds.
 */
export async function settle(world: World, last: RotationRecord, windows = 3): Promise<{ record: RotationRecord; reattempts: number; fresh: number }> {
  let record = last;
  let reattempts = 0;
  let fresh = 0;
  for (let i = 0; i < windows && record.outcome !== 'succeeded'; i++) {
    if (pendingToken(world) !== undefined) {
      record = await world.sm.reattemptPending(world.secretArn);
      reattempts++;
    } else {
      record = await rotateSecret(world);
      fresh++;
    }
  }
  return { record, reattempts, fresh };
}

/** A rotation's attempts for a failure message (step errors never hold a secret: the leak scan checks them). */
export function describeRecord(record: RotationRecord): string {
  return record.attempts.map((a, i) => `attempt ${i + 1}: ${a.steps.map((s) => `${s.step}${s.ok ? '' : ` ✗ (${s.error ?? ''})`}`).join(' → ')}`).join('; ');
}
