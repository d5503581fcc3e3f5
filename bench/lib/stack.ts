/** Helpers over the local stack shared by the bench parts. */
import { LOCAL_LAMBDA_ARN, type LocalStack, type SeededSecret } from '../../infra/local/stack.js';
import type { RotationEvent } from '../../infra/local/secrets-manager/index.js';

export async function seedMany(stack: LocalStack, count: number, prefix: string): Promise<SeededSecret[]> {
  const seeded: SeededSecret[] = [];
  for (let i = 0; i < count; i++) seeded.push(await stack.seedSecret({ name: `${prefix}-${String(i).padStart(4, '0')}` }));
  return seeded;
}

/** Replaces the rotation Lambda the emulator invokes (the stack registers `stack.invoke`). */
export function setRotationLambda(stack: LocalStack, invoke: (event: RotationEvent) => Promise<void>): void {
  stack.sm.registerInvoker(LOCAL_LAMBDA_ARN, invoke);
}

/** The last rotation of a secret succeeded, in one attempt or more. */
export function lastOutcome(stack: LocalStack, arn: string): { succeeded: boolean; attempts: number; errors: string[] } {
  const record = stack.sm.rotationHistory(arn).at(-1);
  const errors = (record?.attempts ?? []).flatMap((a) => a.steps.filter((s) => !s.ok).map((s) => `${s.step}: ${s.error ?? 'failed'}`));
  return { succeeded: record?.outcome === 'succeeded', attempts: record?.attempts.length ?? 0, errors };
}

/**
 * Invariants I and III after the fact: Stytch has no rotation in progress and
 * its current secret is the AWSCURRENT value (compared by last four only).
 */
export function consistent(stack: LocalStack, secret: SeededSecret): boolean {
  const state = stack.stytch.clientState(secret.clientId);
  const current = Object.values(stack.sm.inspect(secret.arn).versions).find((v) => v.stages.includes('AWSCURRENT'));
  if (!current?.secretString) return false;
  const value = JSON.parse(current.secretString) as { client_secret?: string };
  return state.nextClientSecretLast4 === null && state.clientSecretLast4 === value.client_secret?.slice(-4);
}
