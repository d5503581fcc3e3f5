/**
 * The Secrets Manager data model: secrets, versions and staging labels, and
 * every operation except the asynchronous part of RotateSecret (rotation.ts).
 *
 * Operations are synchronous on purpose: each one applies completely or not
 * at all between two awaits, so concurrent callers (a rotation function
 * calling back while RotateSecret awaits it) can never see half an update.
 *
 * Behaviour follows the AWS API reference (botocore's service model) and
 * /work/shared/reference/aws-rotation.md. Where the documentation is silent
 * the choice is commented at the rule.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import {
  SecretsManagerServiceError,
  invalidParameter,
  invalidRequest,
  markedForDeletion,
  noRotationFunction,
  previousRotationIncomplete,
  secretNotFound,
  valueNotFoundForStage,
  valueNotFoundForVersion,
} from './errors.js';
import {
  CLIENT_REQUEST_TOKEN,
  type Input,
  LAMBDA_ARN,
  ROTATION_TOKEN,
  SECRET_ID,
  SECRET_STRING,
  type Tag,
  VERSION_ID,
  VERSION_STAGE,
  readBoolean,
  readInteger,
  readObject,
  readString,
  readStringList,
  readTags,
} from './input.js';
import { type RotationRules, readRotationRules, rotationIntervalMs } from './schedule.js';

export const AWSCURRENT = 'AWSCURRENT';
export const AWSPENDING = 'AWSPENDING';
export const AWSPREVIOUS = 'AWSPREVIOUS';

export interface SecretVersion {
  id: string;
  stages: string[];
  secretString?: string;
  /** Base64, as carried by awsJson1_1 blobs. */
  secretBinary?: string;
  createdDate: number;
}

export interface RotationConfig {
  enabled: boolean;
  lambdaArn?: string;
  rules?: RotationRules;
  lastRotatedDate?: number;
  nextRotationDate?: number;
}

export interface Secret {
  arn: string;
  name: string;
  description?: string;
  tags: Tag[];
  createdDate: number;
  lastChangedDate: number;
  lastAccessedDate?: number;
  /** Set while the secret is scheduled for deletion. */
  deletedDate?: number;
  /** Insertion order is creation order, which ListSecretVersionIds keeps. */
  versions: Map<string, SecretVersion>;
  /** Absent until rotation is first configured: DescribeSecret then omits every rotation field. */
  rotation?: RotationConfig;
}

export type ServiceEventName =
  | 'RotationStarted'
  | 'RotationSucceeded'
  | 'RotationFailed'
  | 'RotationAbandoned'
  | 'TestRotationFailed';

export interface StoreOptions {
  region: string;
  accountId: string;
  now: () => number;
  /**
   * UpdateSecretVersionStage when the label already sits on MoveToVersionId but
   * RemoveFromVersionId names another version (a retried move). AWS does not
   * document it; moto refuses, so 'reject' is the default (a rotation function
   * must survive both answers).
   */
  staleRemoveFromVersionId: 'reject' | 'ignore';
  onEvent: (eventName: ServiceEventName, secret: Secret, versionId?: string) => void;
}

export interface PreparedRotation {
  secret: Secret;
  token: string;
  lambdaArn: string;
  immediately: boolean;
  /** The token already names the current version: a retried RotateSecret whose rotation completed. */
  alreadyDone: boolean;
}

const NAME = /^[A-Za-z0-9/_+=.@!-]+$/;
const ARN_SUFFIX_CHARS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** Timestamps are epoch seconds on the wire. */
const seconds = (ms: number): number => ms / 1000;

const hasValue = (v: SecretVersion): boolean => v.secretString !== undefined || v.secretBinary !== undefined;

export class SecretStore {
  private readonly byName = new Map<string, Secret>();

  constructor(private readonly options: StoreOptions) {}

  // ---- lookups -----------------------------------------------------------

  /** By name, full ARN, or partial ARN (the ARN without its random suffix). */
  lookup(secretId: string): Secret | undefined {
    if (!secretId.startsWith('arn:')) return this.byName.get(secretId);
    for (const secret of this.byName.values()) {
      if (secret.arn === secretId || secret.arn.slice(0, -7) === secretId) return secret;
    }
    return undefined;
  }

  find(secretId: string): Secret {
    const secret = this.lookup(secretId);
    if (!secret) throw secretNotFound();
    return secret;
  }

  /** A secret that is not scheduled for deletion: most operations refuse the others. */
  findLive(secretId: string): Secret {
    const secret = this.find(secretId);
    if (secret.deletedDate !== undefined) throw markedForDeletion();
    return secret;
  }

  all(): Secret[] {
    return [...this.byName.values()];
  }

  holderOf(secret: Secret, stage: string): SecretVersion | undefined {
    for (const version of secret.versions.values()) if (version.stages.includes(stage)) return version;
    return undefined;
  }

  /** The version of an unfinished rotation: AWSPENDING on a version that is not AWSCURRENT. */
  pendingVersion(secret: Secret): SecretVersion | undefined {
    const pending = this.holderOf(secret, AWSPENDING);
    return pending && !pending.stages.includes(AWSCURRENT) ? pending : undefined;
  }

  // ---- labels ------------------------------------------------------------

  /** Attach a label, taking it from whichever version holds it; AWSPREVIOUS follows AWSCURRENT. */
  attach(secret: Secret, version: SecretVersion, stage: string): void {
    const holder = this.holderOf(secret, stage);
    if (holder === version) return;
    if (holder) this.detach(secret, holder, stage);
    version.stages.push(stage);
    if (stage === AWSCURRENT && holder) {
      const previous = this.holderOf(secret, AWSPREVIOUS);
      if (previous) this.detach(secret, previous, AWSPREVIOUS);
      holder.stages.push(AWSPREVIOUS);
    }
  }

  detach(secret: Secret, version: SecretVersion, stage: string): void {
    version.stages = version.stages.filter((s) => s !== stage);
    // A version with neither label nor value (a rotation placeholder) is useless: drop it.
    if (version.stages.length === 0 && !hasValue(version)) secret.versions.delete(version.id);
  }

  // ---- operations --------------------------------------------------------

  createSecret(input: Input): unknown {
    const name = readString(input, 'Name', { required: true, min: 1, max: 512 });
    const token = readString(input, 'ClientRequestToken', CLIENT_REQUEST_TOKEN);
    const description = readString(input, 'Description', { max: 2048 });
    const secretString = readString(input, 'SecretString', SECRET_STRING);
    const secretBinary = readString(input, 'SecretBinary');
    const tags = readTags(input);
    if (!NAME.test(name)) {
      throw invalidParameter('Invalid name. Must be a valid name containing alphanumeric characters, or any of the following: -/_+=.@!');
    }
    if (secretString !== undefined && secretBinary !== undefined) {
      throw invalidParameter("You can't specify both a binary secret value and a string secret value in the same secret.");
    }
    const withValue = secretString !== undefined || secretBinary !== undefined;
    // Real AWS rejects a value without a token (the SDK and CLI always generate one).
    if (withValue && token === undefined) {
      throw invalidRequest('You must provide a ClientRequestToken value. We recommend a UUID-type value.');
    }

    const existing = this.byName.get(name);
    if (existing) {
      if (existing.deletedDate !== undefined) {
        throw invalidRequest("You can't create this secret because a secret with this name is already scheduled for deletion.");
      }
      const version = token === undefined ? undefined : existing.versions.get(token);
      if (version && version.secretString === secretString && version.secretBinary === secretBinary) {
        // A retried CreateSecret (same token, same value) succeeds without change.
        return { ARN: existing.arn, Name: existing.name, VersionId: version.id };
      }
      if (version) throw tokenInUse(token!, existing);
      throw new SecretsManagerServiceError('ResourceExistsException', `The operation failed because the secret ${name} already exists.`);
    }

    const now = this.options.now();
    const secret: Secret = {
      arn: `arn:aws:secretsmanager:${this.options.region}:${this.options.accountId}:secret:${name}-${arnSuffix()}`,
      name,
      tags: tags ?? [],
      createdDate: now,
      lastChangedDate: now,
      versions: new Map(),
    };
    if (description !== undefined) secret.description = description;
    if (withValue) {
      const version: SecretVersion = { id: token!, stages: [AWSCURRENT], createdDate: now };
      if (secretString !== undefined) version.secretString = secretString;
      if (secretBinary !== undefined) version.secretBinary = secretBinary;
      secret.versions.set(version.id, version);
    }
    this.byName.set(name, secret);
    return withValue ? { ARN: secret.arn, Name: name, VersionId: token } : { ARN: secret.arn, Name: name };
  }

  describeSecret(input: Input): unknown {
    return this.metadata(this.find(readString(input, 'SecretId', SECRET_ID)), 'VersionIdsToStages');
  }

  getSecretValue(input: Input): unknown {
    const secretId = readString(input, 'SecretId', SECRET_ID);
    const versionId = readString(input, 'VersionId', VERSION_ID);
    const stage = readString(input, 'VersionStage', VERSION_STAGE);
    const secret = this.findLive(secretId);

    let version: SecretVersion | undefined;
    if (versionId !== undefined) {
      version = secret.versions.get(versionId);
      if (!version) throw valueNotFoundForVersion(versionId);
      if (stage !== undefined && !version.stages.includes(stage)) {
        throw invalidRequest('You provided a VersionStage that is not associated to the provided VersionId.');
      }
      // A rotation placeholder exists but has no value yet.
      if (!hasValue(version)) throw valueNotFoundForVersion(versionId);
    } else {
      const wanted = stage ?? AWSCURRENT;
      version = this.holderOf(secret, wanted);
      if (!version || !hasValue(version)) throw valueNotFoundForStage(wanted);
    }

    // The service records access at day resolution.
    const now = this.options.now();
    secret.lastAccessedDate = now - (now % 86_400_000);
    const out: Record<string, unknown> = { ARN: secret.arn, Name: secret.name, VersionId: version.id };
    if (version.secretString !== undefined) out.SecretString = version.secretString;
    if (version.secretBinary !== undefined) out.SecretBinary = version.secretBinary;
    out.VersionStages = [...version.stages];
    out.CreatedDate = seconds(version.createdDate);
    return out;
  }

  /** `changed` is false for an idempotent repeat, which must not count as a new put. */
  putSecretValue(input: Input): { output: unknown; changed: boolean; secret: Secret; versionId: string } {
    const secretId = readString(input, 'SecretId', SECRET_ID);
    const token = readString(input, 'ClientRequestToken', CLIENT_REQUEST_TOKEN);
    const secretString = readString(input, 'SecretString', SECRET_STRING);
    const secretBinary = readString(input, 'SecretBinary');
    const requested = readStringList(input, 'VersionStages', { ...VERSION_STAGE, maxItems: 20 });
    readString(input, 'RotationToken', ROTATION_TOKEN);
    if (secretString !== undefined && secretBinary !== undefined) {
      throw invalidParameter("You can't specify both a binary secret value and a string secret value in the same secret.");
    }
    if (secretString === undefined && secretBinary === undefined) {
      throw invalidParameter('You must provide either SecretString or SecretBinary.');
    }
    if (token === undefined) throw invalidRequest('You must provide a ClientRequestToken value. We recommend a UUID-type value.');
    const secret = this.findLive(secretId);

    const existing = secret.versions.get(token);
    if (existing && hasValue(existing)) {
      // Versions are immutable: same data is an idempotent success, other data a conflict.
      if (existing.secretString === secretString && existing.secretBinary === secretBinary) {
        return { output: this.putOutput(secret, existing), changed: false, secret, versionId: token };
      }
      throw tokenInUse(token, secret);
    }

    const now = this.options.now();
    // Either a new version, or the value for a rotation's placeholder (labels kept).
    const version: SecretVersion = existing ?? { id: token, stages: [], createdDate: now };
    if (secretString !== undefined) version.secretString = secretString;
    if (secretBinary !== undefined) version.secretBinary = secretBinary;
    if (!existing) secret.versions.set(token, version);

    const stages = [...new Set(requested ?? [AWSCURRENT])];
    // The secret's first value is always current.
    if (!this.holderOf(secret, AWSCURRENT) && !stages.includes(AWSCURRENT)) stages.push(AWSCURRENT);
    const pending = this.pendingVersion(secret);
    const becameCurrent = stages.includes(AWSCURRENT) && !version.stages.includes(AWSCURRENT);
    for (const stage of stages) this.attach(secret, version, stage);
    // A manual new current version abandons an unfinished rotation (CloudTrail RotationAbandoned).
    if (becameCurrent && pending && pending !== version && pending.stages.includes(AWSPENDING)) {
      this.detach(secret, pending, AWSPENDING);
      this.options.onEvent('RotationAbandoned', secret, pending.id);
    }
    secret.lastChangedDate = now;
    return { output: this.putOutput(secret, version), changed: true, secret, versionId: token };
  }

  updateSecretVersionStage(input: Input): unknown {
    const secretId = readString(input, 'SecretId', SECRET_ID);
    const stage = readString(input, 'VersionStage', { ...VERSION_STAGE, required: true });
    const moveTo = readString(input, 'MoveToVersionId', VERSION_ID);
    const removeFrom = readString(input, 'RemoveFromVersionId', VERSION_ID);
    const secret = this.findLive(secretId);

    const target = moveTo === undefined ? undefined : secret.versions.get(moveTo);
    if (moveTo !== undefined && !target) throw invalidParameter(`Not a valid version: ${moveTo}`);
    const source = removeFrom === undefined ? undefined : secret.versions.get(removeFrom);
    if (removeFrom !== undefined && !source) throw invalidParameter(`Not a valid version: ${removeFrom}`);
    if (!target && !source) throw invalidParameter('You must specify MoveToVersionId, RemoveFromVersionId, or both.');

    const holder = this.holderOf(secret, stage);
    if (source && holder !== source) {
      const staleRetry = target !== undefined && holder === target;
      if (!(staleRetry && this.options.staleRemoveFromVersionId === 'ignore')) {
        throw invalidParameter(
          `The staging label ${stage} is not attached to version ${removeFrom}: RemoveFromVersionId must be the version that currently has the label.`,
        );
      }
    }

    if (target) {
      if (holder && holder !== target && !source) {
        throw invalidParameter(
          `The parameter RemoveFromVersionId can't be empty. Staging label ${stage} is currently attached to version ${holder.id}, so you must explicitly reference that version in RemoveFromVersionId.`,
        );
      }
      // The label already on the target is a no-op (the documentation only requires RemoveFromVersionId for another version).
      this.attach(secret, target, stage);
    } else if (source) {
      // Undocumented; chosen so that a secret always has a current value (invariant I).
      if (stage === AWSCURRENT) {
        throw invalidParameter("You can't remove the staging label AWSCURRENT without moving it to another version: use MoveToVersionId.");
      }
      this.detach(secret, source, stage);
    }
    secret.lastChangedDate = this.options.now();
    return { ARN: secret.arn, Name: secret.name };
  }

  listSecretVersionIds(input: Input): unknown {
    const secret = this.find(readString(input, 'SecretId', SECRET_ID));
    const includeDeprecated = readBoolean(input, 'IncludeDeprecated') ?? false;
    const page = paginate(
      [...secret.versions.values()].filter((v) => includeDeprecated || v.stages.length > 0),
      readInteger(input, 'MaxResults', { min: 1, max: 100 }),
      readString(input, 'NextToken', { min: 1, max: 4096 }),
    );
    const out: Record<string, unknown> = {
      Versions: page.items.map((v) => ({ VersionId: v.id, VersionStages: [...v.stages], CreatedDate: seconds(v.createdDate) })),
      ARN: secret.arn,
      Name: secret.name,
    };
    if (page.nextToken) out.NextToken = page.nextToken;
    return out;
  }

  listSecrets(input: Input): unknown {
    const includePlanned = readBoolean(input, 'IncludePlannedDeletion') ?? false;
    const filters = Array.isArray(input.Filters) ? (input.Filters as Input[]) : [];
    const sortOrder = readString(input, 'SortOrder') === 'asc' ? 1 : -1;
    const matching = this.all()
      .filter((s) => includePlanned || s.deletedDate === undefined)
      .filter((s) => filters.every((f) => matchesFilter(s, f)))
      .sort((a, b) => sortOrder * (a.createdDate - b.createdDate));
    const page = paginate(
      matching,
      readInteger(input, 'MaxResults', { min: 1, max: 100 }),
      readString(input, 'NextToken', { min: 1, max: 4096 }),
    );
    const out: Record<string, unknown> = { SecretList: page.items.map((s) => this.metadata(s, 'SecretVersionsToStages')) };
    if (page.nextToken) out.NextToken = page.nextToken;
    return out;
  }

  /** Returns the secret removed for good, if any, so the caller can stop its rotation. */
  deleteSecret(input: Input): { output: unknown; removed?: Secret } {
    const secretId = readString(input, 'SecretId', SECRET_ID);
    const window = readInteger(input, 'RecoveryWindowInDays');
    const force = readBoolean(input, 'ForceDeleteWithoutRecovery') ?? false;
    if (force && window !== undefined) {
      throw invalidParameter("You can't use ForceDeleteWithoutRecovery in conjunction with RecoveryWindowInDays.");
    }
    if (window !== undefined && (window < 7 || window > 30)) {
      throw invalidParameter('The RecoveryWindowInDays value must be between 7 and 30 days (inclusive).');
    }
    const now = this.options.now();
    const secret = this.lookup(secretId);
    if (!secret) {
      // Documented: a forced delete of a missing secret does not fail.
      if (!force) throw secretNotFound();
      return { output: { ARN: this.arnPrefix(secretId), Name: secretId, DeletionDate: seconds(now) } };
    }
    if (force) {
      this.byName.delete(secret.name);
      return { output: { ARN: secret.arn, Name: secret.name, DeletionDate: seconds(now) }, removed: secret };
    }
    if (secret.deletedDate !== undefined) throw markedForDeletion();
    secret.deletedDate = now + (window ?? 30) * 86_400_000;
    return { output: { ARN: secret.arn, Name: secret.name, DeletionDate: seconds(secret.deletedDate) } };
  }

  restoreSecret(input: Input): unknown {
    const secret = this.find(readString(input, 'SecretId', SECRET_ID));
    delete secret.deletedDate;
    return { ARN: secret.arn, Name: secret.name };
  }

  tagResource(input: Input): unknown {
    const secret = this.findLive(readString(input, 'SecretId', SECRET_ID));
    const tags = readTags(input) ?? [];
    for (const tag of tags) {
      secret.tags = [...secret.tags.filter((t) => t.Key !== tag.Key), tag];
    }
    return {};
  }

  untagResource(input: Input): unknown {
    const secret = this.findLive(readString(input, 'SecretId', SECRET_ID));
    const keys = readStringList(input, 'TagKeys') ?? [];
    secret.tags = secret.tags.filter((t) => !keys.includes(t.Key));
    return {};
  }

  /**
   * Turns rotation off. Labels are left as they are: the API reference says
   * a cancelled rotation may leave AWSPENDING behind for the caller to remove,
   * and returns that version's id.
   */
  cancelRotateSecret(input: Input): { output: unknown; secret: Secret } {
    const secret = this.findLive(readString(input, 'SecretId', SECRET_ID));
    if (!secret.rotation?.lambdaArn) {
      throw noRotationFunction();
    }
    secret.rotation.enabled = false;
    delete secret.rotation.nextRotationDate;
    const pending = this.pendingVersion(secret);
    const output: Record<string, unknown> = { ARN: secret.arn, Name: secret.name };
    if (pending) output.VersionId = pending.id;
    return { output, secret };
  }

  /**
   * The synchronous start of RotateSecret: validation, the "previous rotation
   * isn't complete" rule, the stored configuration and the AWSPENDING
   * placeholder without a value. Nothing changes when it throws.
   */
  prepareRotation(input: Input, canInvoke: (lambdaArn: string) => boolean): PreparedRotation {
    const secretId = readString(input, 'SecretId', SECRET_ID);
    const requestedToken = readString(input, 'ClientRequestToken', CLIENT_REQUEST_TOKEN);
    const requestedLambda = readString(input, 'RotationLambdaARN', LAMBDA_ARN);
    const rawRules = readObject(input, 'RotationRules');
    const rules = rawRules === undefined ? undefined : readRotationRules(rawRules);
    const immediately = readBoolean(input, 'RotateImmediately') ?? true;
    const secret = this.findLive(secretId);
    if (this.pendingVersion(secret)) {
      throw previousRotationIncomplete();
    }

    const lambdaArn = requestedLambda ?? secret.rotation?.lambdaArn;
    if (!lambdaArn) {
      throw noRotationFunction();
    }
    if (!canInvoke(lambdaArn)) {
      throw new SecretsManagerServiceError(
        'AccessDeniedException',
        `Secrets Manager cannot invoke the specified Lambda function. Ensure that the function policy grants access to the principal secretsmanager.amazonaws.com. (Local emulator: no invoker is registered for ${lambdaArn}; call registerInvoker first.)`,
      );
    }
    // The service generates the token only for in-process callers here; SDKs and the CLI always send one.
    const token = requestedToken ?? randomUUID();
    const reused = secret.versions.get(token);
    if (reused && !reused.stages.includes(AWSCURRENT)) throw tokenInUse(token, secret);

    const now = this.options.now();
    const previous = secret.rotation;
    secret.rotation = { enabled: true, lambdaArn };
    const keptRules = rules ?? previous?.rules;
    if (keptRules) secret.rotation.rules = keptRules;
    if (previous?.lastRotatedDate !== undefined) secret.rotation.lastRotatedDate = previous.lastRotatedDate;
    this.scheduleNext(secret, previous?.lastRotatedDate ?? now);
    secret.lastChangedDate = now;
    if (reused) return { secret, token, lambdaArn, immediately, alreadyDone: true };
    this.addPlaceholder(secret, token);
    return { secret, token, lambdaArn, immediately, alreadyDone: false };
  }

  /**
   * Only the placeholder step of RotateSecret, for tests that drive the steps
   * themselves: same "previous rotation isn't complete" rule, no configuration
   * needed, nothing invoked.
   */
  beginRotation(secretId: string, token: string): void {
    const secret = this.findLive(secretId);
    if (this.pendingVersion(secret)) {
      throw previousRotationIncomplete();
    }
    if (secret.versions.has(token)) throw tokenInUse(token, secret);
    this.addPlaceholder(secret, token);
  }

  /** The token version with only AWSPENDING and no value, as the service creates it before createSecret. */
  private addPlaceholder(secret: Secret, token: string): void {
    // AWSPENDING left on the current version by a finished rotation is cleared first.
    const stalePending = this.holderOf(secret, AWSPENDING);
    if (stalePending) this.detach(secret, stalePending, AWSPENDING);
    const now = this.options.now();
    secret.versions.set(token, { id: token, stages: [AWSPENDING], createdDate: now });
    secret.lastChangedDate = now;
  }

  scheduleNext(secret: Secret, from: number): void {
    if (!secret.rotation) return;
    const interval = rotationIntervalMs(secret.rotation.rules);
    if (interval === undefined || !secret.rotation.enabled) delete secret.rotation.nextRotationDate;
    else secret.rotation.nextRotationDate = from + interval;
  }

  // ---- output shapes -----------------------------------------------------

  private putOutput(secret: Secret, version: SecretVersion): unknown {
    return { ARN: secret.arn, Name: secret.name, VersionId: version.id, VersionStages: [...version.stages] };
  }

  /** DescribeSecret / ListSecrets entry: the service omits every field without a value. */
  private metadata(secret: Secret, stagesKey: 'VersionIdsToStages' | 'SecretVersionsToStages'): Record<string, unknown> {
    const out: Record<string, unknown> = { ARN: secret.arn, Name: secret.name };
    if (secret.description !== undefined) out.Description = secret.description;
    const rotation = secret.rotation;
    if (rotation) {
      out.RotationEnabled = rotation.enabled;
      if (rotation.lambdaArn) out.RotationLambdaARN = rotation.lambdaArn;
      if (rotation.rules) out.RotationRules = describedRules(rotation.rules);
      // "If the secret isn't configured for rotation or rotation has been disabled, Secrets Manager returns null."
      if (rotation.enabled && rotation.lastRotatedDate !== undefined) out.LastRotatedDate = seconds(rotation.lastRotatedDate);
      if (rotation.enabled && rotation.nextRotationDate !== undefined) out.NextRotationDate = seconds(rotation.nextRotationDate);
    }
    out.LastChangedDate = seconds(secret.lastChangedDate);
    if (secret.lastAccessedDate !== undefined) out.LastAccessedDate = seconds(secret.lastAccessedDate);
    if (secret.deletedDate !== undefined) out.DeletedDate = seconds(secret.deletedDate);
    if (secret.tags.length > 0) out.Tags = secret.tags.map((t) => ({ ...t }));
    // Versions without labels are deprecated and not listed.
    const stages: Record<string, string[]> = {};
    for (const v of secret.versions.values()) if (v.stages.length > 0) stages[v.id] = [...v.stages];
    if (Object.keys(stages).length > 0) out[stagesKey] = stages;
    out.CreatedDate = seconds(secret.createdDate);
    return out;
  }

  private arnPrefix(name: string): string {
    return name.startsWith('arn:') ? name : `arn:aws:secretsmanager:${this.options.region}:${this.options.accountId}:secret:${name}`;
  }
}

/** DescribeSecret reports AutomaticallyAfterDays alongside a rate in days, as the service computes it. */
function describedRules(rules: RotationRules): RotationRules {
  const out = { ...rules };
  const days = /^rate\(\s*(\d+)\s+days?\s*\)$/.exec(rules.ScheduleExpression ?? '');
  if (days && out.AutomaticallyAfterDays === undefined) out.AutomaticallyAfterDays = Number(days[1]);
  return out;
}

function tokenInUse(token: string, secret: Secret): SecretsManagerServiceError {
  return new SecretsManagerServiceError(
    'ResourceExistsException',
    `You can't use ClientRequestToken ${token} because that value is already in use for a version of secret ${secret.arn}.`,
  );
}

function arnSuffix(): string {
  return [...randomBytes(6)].map((b) => ARN_SUFFIX_CHARS[b % ARN_SUFFIX_CHARS.length]).join('');
}

function paginate<T>(items: T[], maxResults: number | undefined, nextToken: string | undefined): { items: T[]; nextToken?: string } {
  let start = 0;
  if (nextToken !== undefined) {
    start = Number.parseInt(Buffer.from(nextToken, 'base64url').toString('utf8'), 10);
    if (!Number.isInteger(start) || start < 0) {
      throw new SecretsManagerServiceError('InvalidNextTokenException', 'The NextToken value is not valid.');
    }
  }
  const size = maxResults ?? 100;
  const end = start + size;
  return end < items.length
    ? { items: items.slice(start, end), nextToken: Buffer.from(String(end)).toString('base64url') }
    : { items: items.slice(start) };
}

/** ListSecrets filters: prefix matches, `!` negates (as documented for the Filter shape). */
function matchesFilter(secret: Secret, filter: Input): boolean {
  const key = typeof filter.Key === 'string' ? filter.Key : '';
  const values = Array.isArray(filter.Values) ? filter.Values.filter((v): v is string => typeof v === 'string') : [];
  const fields = (): string[] => {
    switch (key) {
      case 'name':
        return [secret.name];
      case 'description':
        return [secret.description ?? ''];
      case 'tag-key':
        return secret.tags.map((t) => t.Key);
      case 'tag-value':
        return secret.tags.map((t) => t.Value);
      case 'all':
        return [secret.name, secret.description ?? '', ...secret.tags.flatMap((t) => [t.Key, t.Value])];
      default:
        throw invalidParameter(`Invalid filter key: ${key}`);
    }
  };
  const caseless = key === 'description' || key === 'all';
  const norm = (s: string): string => (caseless ? s.toLowerCase() : s);
  return values.some((raw) => {
    const negate = raw.startsWith('!');
    const wanted = norm(negate ? raw.slice(1) : raw);
    const hit = key === 'all'
      ? fields().some((f) => norm(f).split(/\s+/).some((w) => w.startsWith(wanted)) || norm(f).startsWith(wanted))
      : fields().some((f) => norm(f).startsWith(wanted));
    return negate ? !hit : hit;
  });
}
