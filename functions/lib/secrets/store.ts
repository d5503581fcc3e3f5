import {
  DescribeSecretCommand,
  GetSecretValueCommand,
  PutSecretValueCommand,
  UpdateSecretVersionStageCommand,
  type SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { InvalidInputError } from '../errors.js';
import { shownSecretId } from '../schemas.js';

export const AWSCURRENT = 'AWSCURRENT';
export const AWSPENDING = 'AWSPENDING';

export interface SecretDescription {
  arn: string;
  name: string;
  rotationEnabled: boolean;
  /** Scheduled for deletion (DeleteSecret with a recovery window). */
  deleted: boolean;
  /** Version id → staging labels. */
  versions: Record<string, string[]>;
  currentVersionId: string | undefined;
}

/** The subset of the SDK client the store uses: lets tests pass a mock or an in-process emulator. */
export type SecretsManagerSend = Pick<SecretsManagerClient, 'send'>;

const isNotFound = (error: unknown) => error instanceof Error && error.name === 'ResourceNotFoundException';

/**
 * Secrets Manager access for the rotation: versions, stages, put, move.
 *
 * Values are cached by (ARN, version id) for a bounded time: a version's value
 * never changes once written (Secrets Manager refuses different data under an
 * existing ClientRequestToken), so the cache cannot serve a stale value, and it
 * spares the three later steps of a rotation from re-reading both versions.
 */
export class SecretStore {
  private readonly values = new Map<string, { value: string; expiresAt: number }>();

  constructor(
    private readonly client: SecretsManagerSend,
    private readonly options: { cacheTtlMs?: number; maxCached?: number; now?: () => number } = {},
  ) {}

  async describe(secretId: string): Promise<SecretDescription> {
    let out;
    try {
      out = await this.client.send(new DescribeSecretCommand({ SecretId: secretId }));
    } catch (error) {
      if (isNotFound(error)) {
        throw new InvalidInputError(`Secret ${shownSecretId(secretId)} does not exist (or this function may not read it); check the SecretId and the function's IAM policy.`, {
          cause: error,
        });
      }
      throw error;
    }
    const versions: Record<string, string[]> = {};
    let currentVersionId: string | undefined;
    for (const [id, stages] of Object.entries(out.VersionIdsToStages ?? {})) {
      versions[id] = stages ?? [];
      if (stages?.includes(AWSCURRENT)) currentVersionId = id;
    }
    return {
      arn: out.ARN ?? secretId,
      name: out.Name ?? secretId,
      rotationEnabled: out.RotationEnabled === true,
      deleted: out.DeletedDate !== undefined,
      versions,
      currentVersionId,
    };
  }

  /**
   * A version's SecretString, or undefined when the version has no value yet
   * (Secrets Manager labels the token version AWSPENDING before createSecret
   * gives it one). `fresh` bypasses the cache (reading back after a failed put).
   */
  async getVersion(arn: string, versionId: string, opts: { fresh?: boolean } = {}): Promise<string | undefined> {
    const key = `${arn}\u0000${versionId}`;
    const now = (this.options.now ?? Date.now)();
    const hit = this.values.get(key);
    if (hit && !opts.fresh && hit.expiresAt > now) return hit.value;
    let out;
    try {
      out = await this.client.send(new GetSecretValueCommand({ SecretId: arn, VersionId: versionId }));
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
    if (out.SecretString !== undefined) this.remember(key, out.SecretString, now);
    return out.SecretString;
  }

  /**
   * AWSCURRENT's version id and value in one call (the sweep's read); `deleted` for a secret scheduled for
   * deletion (it may still be restored), `gone` for one that no longer exists.
   */
  async getCurrentVersion(
    secretId: string,
  ): Promise<{ state: 'current'; arn: string; name: string; versionId: string; value: string | undefined } | { state: 'deleted' | 'gone' }> {
    let out;
    try {
      out = await this.client.send(new GetSecretValueCommand({ SecretId: secretId, VersionStage: AWSCURRENT }));
    } catch (error) {
      if (isNotFound(error)) return { state: 'gone' };
      // A secret scheduled for deletion refuses reads with InvalidRequestException: confirm before saying so.
      if (error instanceof Error && error.name === 'InvalidRequestException' && (await this.describe(secretId).catch(() => undefined))?.deleted) return { state: 'deleted' };
      throw error;
    }
    if (out.VersionId === undefined) return { state: 'gone' };
    if (out.SecretString !== undefined) this.remember(`${out.ARN ?? secretId}\u0000${out.VersionId}`, out.SecretString, (this.options.now ?? Date.now)());
    return { state: 'current', arn: out.ARN ?? secretId, name: out.Name ?? secretId, versionId: out.VersionId, value: out.SecretString };
  }

  /** The AWSCURRENT value of another secret (the Stytch credentials). */
  async getCurrent(secretId: string): Promise<string | undefined> {
    try {
      return (await this.client.send(new GetSecretValueCommand({ SecretId: secretId }))).SecretString;
    } catch (error) {
      if (isNotFound(error)) {
        throw new InvalidInputError(`Secret ${shownSecretId(secretId)} does not exist or has no current value; create it, or fix the id that names it.`, { cause: error });
      }
      throw error;
    }
  }

  /** PutSecretValue with the event's token as ClientRequestToken (DESIGN.md §2): retrying it with the same value is a no-op. */
  async putPending(arn: string, token: string, secretString: string, rotationToken: string | undefined): Promise<void> {
    await this.client.send(
      new PutSecretValueCommand({
        SecretId: arn,
        ClientRequestToken: token,
        SecretString: secretString,
        VersionStages: [AWSPENDING],
        ...(rotationToken ? { RotationToken: rotationToken } : {}),
      }),
    );
    this.remember(`${arn}\u0000${token}`, secretString, (this.options.now ?? Date.now)());
  }

  async moveStage(arn: string, stage: string, toVersionId: string, fromVersionId: string | undefined): Promise<void> {
    await this.client.send(
      new UpdateSecretVersionStageCommand({ SecretId: arn, VersionStage: stage, MoveToVersionId: toVersionId, RemoveFromVersionId: fromVersionId }),
    );
  }

  async removeStage(arn: string, stage: string, fromVersionId: string): Promise<void> {
    await this.client.send(new UpdateSecretVersionStageCommand({ SecretId: arn, VersionStage: stage, RemoveFromVersionId: fromVersionId }));
  }

  private remember(key: string, value: string, now: number): void {
    const max = this.options.maxCached ?? 32;
    this.values.delete(key);
    this.values.set(key, { value, expiresAt: now + (this.options.cacheTtlMs ?? 10 * 60_000) });
    // Oldest first: Map keeps insertion order.
    while (this.values.size > max) this.values.delete(this.values.keys().next().value as string);
  }
}
