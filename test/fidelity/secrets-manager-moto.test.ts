/**
 * Differential test: the same operations, through the same AWS SDK v3 client
 * code, against the local emulator and against moto_server (an independent
 * implementation). What a client observes is compared after normalisation:
 * version ids are the ClientRequestTokens we pass, so they match; ARN suffixes
 * and dates are dropped; label lists are sorted; errors compare by name.
 *
 * Where moto and the AWS documentation disagree the emulator follows AWS, and
 * the test says so and pins moto's answer (moto 5.2.1). If a pinned moto
 * answer changes after a moto upgrade, update the note in
 * reference/aws-rotation.md rather than the emulator.
 */
import {
  type SecretsManagerClient,
  CancelRotateSecretCommand,
  CreateSecretCommand,
  DeleteSecretCommand,
  DescribeSecretCommand,
  GetSecretValueCommand,
  ListSecretVersionIdsCommand,
  PutSecretValueCommand,
  RestoreSecretCommand,
  RotateSecretCommand,
  UpdateSecretVersionStageCommand,
} from '@aws-sdk/client-secrets-manager';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SecretsManagerEmulator, createSdkClient } from '../../infra/local/secrets-manager/index.js';
import { type MotoServer, findMotoServer, startMotoServer, toolGate } from '../helpers/moto.js';

const motoPath = await findMotoServer();
const gate = toolGate('moto_server', motoPath);

type Observation = { ok: unknown } | { error: string };

/** Runs labelled operations against one backend and keeps what a client sees. */
class Trace {
  readonly steps: Array<[string, Observation]> = [];
  constructor(readonly client: SecretsManagerClient) {}

  async run<T>(label: string, call: Promise<T>, pick: (out: T) => unknown = () => 'ok'): Promise<Observation> {
    let observation: Observation;
    try {
      observation = { ok: normalise(pick(await call)) };
    } catch (error) {
      observation = { error: (error as Error).name };
    }
    this.steps.push([label, observation]);
    return observation;
  }

  get(label: string): Observation | undefined {
    return this.steps.find(([l]) => l === label)?.[1];
  }
}

const DATE_KEYS = new Set(['CreatedDate', 'LastChangedDate', 'LastAccessedDate', 'DeletedDate', 'DeletionDate', 'LastRotatedDate', 'NextRotationDate']);

/** Drops dates and the SDK's metadata, strips ARN suffixes, sorts labels. */
function normalise(value: unknown): unknown {
  if (Array.isArray(value)) {
    const items = value.map(normalise);
    return items.every((i) => typeof i === 'string') ? [...(items as string[])].sort() : items;
  }
  if (value && typeof value === 'object' && !(value instanceof Date)) {
    const out: Record<string, unknown> = {};
    for (const [key, v] of Object.entries(value)) {
      if (key === '$metadata' || DATE_KEYS.has(key)) continue;
      out[key] = key === 'ARN' && typeof v === 'string' ? v.replace(/-[A-Za-z0-9]{6}$/, '') : normalise(v);
    }
    return out;
  }
  return value;
}

/** VersionIdsToStages without deprecated (label-less) versions: AWS omits them, moto lists them with []. */
function labelled(map: Record<string, string[]> | undefined): Record<string, string[]> {
  return Object.fromEntries(Object.entries(map ?? {}).filter(([, stages]) => stages.length > 0));
}

const token = (scenario: number, n: number): string =>
  `00000000-0000-4000-8000-${String(scenario).padStart(6, '0')}${String(n).padStart(6, '0')}`;

const describeStages = (t: Trace, secretId: string, label = 'describe'): Promise<Observation> =>
  t.run(label, t.client.send(new DescribeSecretCommand({ SecretId: secretId })), (o) => ({
    Name: o.Name,
    VersionIdsToStages: labelled(o.VersionIdsToStages),
  }));

const value = (t: Trace, label: string, input: { SecretId: string; VersionId?: string; VersionStage?: string }): Promise<Observation> =>
  t.run(label, t.client.send(new GetSecretValueCommand(input)), (o) => ({
    SecretString: o.SecretString,
    VersionId: o.VersionId,
    VersionStages: o.VersionStages,
  }));

describe.skipIf(gate.skip)(gate.title('Fidelity: Secrets Manager emulator vs moto_server'), () => {
  let moto: MotoServer | undefined;
  let emulatorServer: Awaited<ReturnType<SecretsManagerEmulator['listen']>> | undefined;
  let emulatorClient: SecretsManagerClient;
  let motoClient: SecretsManagerClient;

  beforeAll(async () => {
    moto = await startMotoServer(gate.assert());
    emulatorServer = await new SecretsManagerEmulator().listen();
    // One attempt: a retried call would hide what the backend answered first.
    emulatorClient = createSdkClient(emulatorServer.url, { maxAttempts: 1 });
    motoClient = createSdkClient(moto.url, { maxAttempts: 1 });
  }, 60_000);

  afterAll(async () => {
    emulatorClient?.destroy();
    motoClient?.destroy();
    await emulatorServer?.close();
    await moto?.stop();
  });

  /** The same scenario against both backends. */
  async function both(scenario: (t: Trace) => Promise<void>): Promise<{ emulator: Trace; moto: Trace }> {
    const emulator = new Trace(emulatorClient);
    const motoTrace = new Trace(motoClient);
    await scenario(emulator);
    await scenario(motoTrace);
    return { emulator, moto: motoTrace };
  }

  it('agrees on creating a secret and reading it by stage and by version', async () => {
    const name = 'fidelity-create';
    const t1 = token(1, 1);
    const { emulator, moto } = await both(async (t) => {
      await t.run('create', t.client.send(new CreateSecretCommand({ Name: name, SecretString: 'v1', ClientRequestToken: t1 })), (o) => o);
      await value(t, 'get default', { SecretId: name });
      await value(t, 'get AWSCURRENT', { SecretId: name, VersionStage: 'AWSCURRENT' });
      await value(t, 'get by version', { SecretId: name, VersionId: t1 });
      await value(t, 'get by version and stage', { SecretId: name, VersionId: t1, VersionStage: 'AWSCURRENT' });
      await describeStages(t, name);
      await t.run('list versions', t.client.send(new ListSecretVersionIdsCommand({ SecretId: name })), (o) =>
        Object.fromEntries((o.Versions ?? []).map((v) => [v.VersionId, v.VersionStages])),
      );
      await t.run('create again, same token and value', t.client.send(new CreateSecretCommand({ Name: name, SecretString: 'v1', ClientRequestToken: t1 })), (o) => o.VersionId);
      await t.run('create again, other token', t.client.send(new CreateSecretCommand({ Name: name, SecretString: 'v1', ClientRequestToken: token(1, 2) })));
    });
    expect(emulator.steps).toEqual(moto.steps);
    expect(emulator.get('get default')).toEqual({ ok: { SecretString: 'v1', VersionId: t1, VersionStages: ['AWSCURRENT'] } });
    expect(emulator.get('create again, other token')).toEqual({ error: 'ResourceExistsException' });
  });

  it('agrees on PutSecretValue with a token: a repeat with the same value succeeds, AWSPREVIOUS follows AWSCURRENT', async () => {
    const name = 'fidelity-put';
    const [t1, t2, t3] = [token(2, 1), token(2, 2), token(2, 3)];
    const { emulator, moto } = await both(async (t) => {
      await t.run('create', t.client.send(new CreateSecretCommand({ Name: name, SecretString: 'v1', ClientRequestToken: t1 })));
      const put = (label: string, tok: string, v: string) =>
        t.run(label, t.client.send(new PutSecretValueCommand({ SecretId: name, ClientRequestToken: tok, SecretString: v })), (o) => ({
          VersionId: o.VersionId,
          VersionStages: o.VersionStages,
        }));
      await put('put v2', t2, 'v2');
      await put('put v2 again (same token, same value)', t2, 'v2');
      await describeStages(t, name, 'after v2');
      await value(t, 'get AWSPREVIOUS after v2', { SecretId: name, VersionStage: 'AWSPREVIOUS' });
      await put('put v3', t3, 'v3');
      await describeStages(t, name, 'after v3');
      await value(t, 'get AWSPREVIOUS after v3', { SecretId: name, VersionStage: 'AWSPREVIOUS' });
      // A current (not pending) version under the same token with other data: both refuse.
      await put('put other value under the current token', t3, 'v3-other');
      await value(t, 'get current after refused put', { SecretId: name });
    });
    expect(emulator.steps).toEqual(moto.steps);
    expect(emulator.get('after v3')).toEqual({ ok: { Name: name, VersionIdsToStages: { [t2]: ['AWSPREVIOUS'], [t3]: ['AWSCURRENT'] } } });
    expect(emulator.get('put other value under the current token')).toEqual({ error: 'ResourceExistsException' });
  });

  it('agrees on the errors for a missing stage, a missing version, a missing secret and a VersionId/VersionStage mismatch', async () => {
    const name = 'fidelity-errors';
    const t1 = token(3, 1);
    const { emulator, moto } = await both(async (t) => {
      await t.run('create', t.client.send(new CreateSecretCommand({ Name: name, SecretString: 'v1', ClientRequestToken: t1 })));
      await value(t, 'missing stage', { SecretId: name, VersionStage: 'AWSPENDING' });
      await value(t, 'missing version', { SecretId: name, VersionId: token(3, 99) });
      await value(t, 'missing secret', { SecretId: 'fidelity-no-such-secret' });
      await value(t, 'version and stage disagree', { SecretId: name, VersionId: t1, VersionStage: 'AWSPREVIOUS' });
      await describeStages(t, 'fidelity-no-such-secret', 'describe missing secret');
      await t.run('cancel rotation never configured', t.client.send(new CancelRotateSecretCommand({ SecretId: name })));
      await t.run(
        'move to a version that does not exist',
        t.client.send(new UpdateSecretVersionStageCommand({ SecretId: name, VersionStage: 'AWSCURRENT', MoveToVersionId: token(3, 98), RemoveFromVersionId: t1 })),
      );
    });
    expect(emulator.steps).toEqual(moto.steps);
    expect(emulator.get('missing stage')).toEqual({ error: 'ResourceNotFoundException' });
    expect(emulator.get('version and stage disagree')).toEqual({ error: 'InvalidRequestException' });
  });

  it('agrees on moving AWSCURRENT: RemoveFromVersionId required and checked, AWSPREVIOUS follows, AWSPENDING removable', async () => {
    const name = 'fidelity-stages';
    const [t1, t2] = [token(4, 1), token(4, 2)];
    const { emulator, moto } = await both(async (t) => {
      const move = (label: string, input: { VersionStage: string; MoveToVersionId?: string; RemoveFromVersionId?: string }) =>
        t.run(label, t.client.send(new UpdateSecretVersionStageCommand({ SecretId: name, ...input })));
      await t.run('create', t.client.send(new CreateSecretCommand({ Name: name, SecretString: 'v1', ClientRequestToken: t1 })));
      await t.run(
        'put pending',
        t.client.send(new PutSecretValueCommand({ SecretId: name, ClientRequestToken: t2, SecretString: 'v2', VersionStages: ['AWSPENDING'] })),
        (o) => o.VersionStages,
      );
      await value(t, 'current still v1', { SecretId: name });
      await value(t, 'pending is v2', { SecretId: name, VersionStage: 'AWSPENDING' });
      await move('move AWSCURRENT without RemoveFromVersionId', { VersionStage: 'AWSCURRENT', MoveToVersionId: t2 });
      await move('move AWSCURRENT with a wrong RemoveFromVersionId', { VersionStage: 'AWSCURRENT', MoveToVersionId: t2, RemoveFromVersionId: t2 });
      await describeStages(t, name, 'unchanged after refused moves');
      await move('move AWSCURRENT', { VersionStage: 'AWSCURRENT', MoveToVersionId: t2, RemoveFromVersionId: t1 });
      await describeStages(t, name, 'after the move');
      await value(t, 'AWSPREVIOUS is v1', { SecretId: name, VersionStage: 'AWSPREVIOUS' });
      // A retried finishSecret: the label is already on the target, RemoveFromVersionId is stale.
      // AWS does not document it; moto refuses and so does the emulator by default (option staleRemoveFromVersionId).
      await move('repeat the move with a stale RemoveFromVersionId', { VersionStage: 'AWSCURRENT', MoveToVersionId: t2, RemoveFromVersionId: t1 });
      await move('remove AWSPENDING', { VersionStage: 'AWSPENDING', RemoveFromVersionId: t2 });
      await describeStages(t, name, 'after removing AWSPENDING');
      await value(t, 'no pending value', { SecretId: name, VersionStage: 'AWSPENDING' });
      await move('move AWSCURRENT back', { VersionStage: 'AWSCURRENT', MoveToVersionId: t1, RemoveFromVersionId: t2 });
      await describeStages(t, name, 'after moving back');
    });
    expect(emulator.steps).toEqual(moto.steps);
    expect(emulator.get('after the move')).toEqual({
      ok: { Name: name, VersionIdsToStages: { [t1]: ['AWSPREVIOUS'], [t2]: ['AWSCURRENT', 'AWSPENDING'] } },
    });
    expect(emulator.get('after moving back')).toEqual({ ok: { Name: name, VersionIdsToStages: { [t1]: ['AWSCURRENT'], [t2]: ['AWSPREVIOUS'] } } });
    expect(emulator.get('move AWSCURRENT without RemoveFromVersionId')).toEqual({ error: 'InvalidParameterException' });
    expect(emulator.get('repeat the move with a stale RemoveFromVersionId')).toEqual({ error: 'InvalidParameterException' });
  });

  it('agrees on deletion: a secret scheduled for deletion is described but not read; a forced delete of a missing secret succeeds', async () => {
    const name = 'fidelity-delete';
    const { emulator, moto } = await both(async (t) => {
      await t.run('create', t.client.send(new CreateSecretCommand({ Name: name, SecretString: 'v1', ClientRequestToken: token(5, 1) })));
      await t.run('delete with a recovery window', t.client.send(new DeleteSecretCommand({ SecretId: name, RecoveryWindowInDays: 7 })), (o) => o.Name);
      await value(t, 'read while scheduled for deletion', { SecretId: name });
      await t.run('describe while scheduled for deletion', t.client.send(new DescribeSecretCommand({ SecretId: name })), (o) => o.DeletedDate !== undefined);
      await t.run('restore', t.client.send(new RestoreSecretCommand({ SecretId: name })), (o) => o.Name);
      await value(t, 'read after restore', { SecretId: name });
      await t.run('force delete', t.client.send(new DeleteSecretCommand({ SecretId: name, ForceDeleteWithoutRecovery: true })), (o) => o.Name);
      await value(t, 'read after force delete', { SecretId: name });
      await t.run('force delete a missing secret', t.client.send(new DeleteSecretCommand({ SecretId: 'fidelity-never-existed', ForceDeleteWithoutRecovery: true })), (o) => o.Name);
      await t.run('both recovery window and force', t.client.send(new DeleteSecretCommand({ SecretId: name, RecoveryWindowInDays: 7, ForceDeleteWithoutRecovery: true })));
    });
    expect(emulator.steps).toEqual(moto.steps);
    expect(emulator.get('read while scheduled for deletion')).toEqual({ error: 'InvalidRequestException' });
    expect(emulator.get('read after force delete')).toEqual({ error: 'ResourceNotFoundException' });
  });

  describe('where moto and the AWS documentation disagree, the emulator follows AWS', () => {
    it('refuses a different value under an existing AWSPENDING token (moto overwrites it)', async () => {
      const name = 'fidelity-diverge-put';
      const [t1, t2] = [token(10, 1), token(10, 2)];
      const { emulator, moto } = await both(async (t) => {
        await t.run('create', t.client.send(new CreateSecretCommand({ Name: name, SecretString: 'v1', ClientRequestToken: t1 })));
        const put = (label: string, v: string) =>
          t.run(label, t.client.send(new PutSecretValueCommand({ SecretId: name, ClientRequestToken: t2, SecretString: v, VersionStages: ['AWSPENDING'] })));
        await put('put pending', 'v2');
        await put('put pending, same value', 'v2');
        await put('put pending, other value', 'v2-other');
        await value(t, 'pending value afterwards', { SecretId: name, VersionId: t2 });
      });
      // PutSecretValue reference: "if the secret data is different, then the operation fails because you can't modify an existing version".
      expect(emulator.get('put pending, same value')).toEqual({ ok: 'ok' });
      expect(emulator.get('put pending, other value')).toEqual({ error: 'ResourceExistsException' });
      expect(emulator.get('pending value afterwards')).toMatchObject({ ok: { SecretString: 'v2' } });
      // moto 5.2.1 treats a version carrying AWSPENDING as writable and overwrites it.
      expect(moto.get('put pending, other value')).toEqual({ ok: 'ok' });
      expect(moto.get('pending value afterwards')).toMatchObject({ ok: { SecretString: 'v2-other' } });
    });

    it('lists no deprecated (label-less) version (moto lists it with no labels)', async () => {
      const name = 'fidelity-diverge-deprecated';
      const [t1, t2] = [token(11, 1), token(11, 2)];
      const { emulator, moto } = await both(async (t) => {
        await t.run('create', t.client.send(new CreateSecretCommand({ Name: name, SecretString: 'v1', ClientRequestToken: t1 })));
        await t.run('put pending', t.client.send(new PutSecretValueCommand({ SecretId: name, ClientRequestToken: t2, SecretString: 'v2', VersionStages: ['AWSPENDING'] })));
        await t.run('remove AWSPENDING', t.client.send(new UpdateSecretVersionStageCommand({ SecretId: name, VersionStage: 'AWSPENDING', RemoveFromVersionId: t2 })));
        await t.run('describe raw', t.client.send(new DescribeSecretCommand({ SecretId: name })), (o) => o.VersionIdsToStages);
        await t.run('list raw', t.client.send(new ListSecretVersionIdsCommand({ SecretId: name })), (o) => (o.Versions ?? []).map((v) => v.VersionId));
      });
      // DescribeSecret reference: VersionIdsToStages lists "the versions of the secret that have staging labels attached";
      // ListSecretVersionIds includes label-less versions only with IncludeDeprecated.
      expect(emulator.get('describe raw')).toEqual({ ok: { [t1]: ['AWSCURRENT'] } });
      expect(emulator.get('list raw')).toEqual({ ok: [t1] });
      expect(moto.get('describe raw')).toEqual({ ok: { [t1]: ['AWSCURRENT'], [t2]: [] } });
      expect(moto.get('list raw')).toEqual({ ok: [t1, t2] });
    });

    it('requires RemoveFromVersionId to move any label held by another version (moto only checks AWSCURRENT)', async () => {
      const name = 'fidelity-diverge-label';
      const [t1, t2] = [token(12, 1), token(12, 2)];
      const { emulator, moto } = await both(async (t) => {
        await t.run('create', t.client.send(new CreateSecretCommand({ Name: name, SecretString: 'v1', ClientRequestToken: t1 })));
        await t.run('put pending', t.client.send(new PutSecretValueCommand({ SecretId: name, ClientRequestToken: t2, SecretString: 'v2', VersionStages: ['AWSPENDING'] })));
        await t.run('move AWSPENDING without RemoveFromVersionId', t.client.send(new UpdateSecretVersionStageCommand({ SecretId: name, VersionStage: 'AWSPENDING', MoveToVersionId: t1 })));
        await t.run('describe raw', t.client.send(new DescribeSecretCommand({ SecretId: name })), (o) => o.VersionIdsToStages);
      });
      // UpdateSecretVersionStage reference: "If the label is attached and you either do not specify this parameter,
      // or the version ID does not match, then the operation fails." A label is on one version at a time.
      expect(emulator.get('move AWSPENDING without RemoveFromVersionId')).toEqual({ error: 'InvalidParameterException' });
      expect(emulator.get('describe raw')).toEqual({ ok: { [t1]: ['AWSCURRENT'], [t2]: ['AWSPENDING'] } });
      // moto 5.2.1 attaches it without removing it: AWSPENDING ends up on two versions.
      expect(moto.get('move AWSPENDING without RemoveFromVersionId')).toEqual({ ok: 'ok' });
      expect(moto.get('describe raw')).toEqual({ ok: { [t1]: ['AWSCURRENT', 'AWSPENDING'], [t2]: ['AWSPENDING'] } });
    });

    it('accepts moving AWSCURRENT onto the version that holds it without RemoveFromVersionId (moto refuses)', async () => {
      const name = 'fidelity-diverge-noop-move';
      const t1 = token(13, 1);
      const { emulator, moto } = await both(async (t) => {
        await t.run('create', t.client.send(new CreateSecretCommand({ Name: name, SecretString: 'v1', ClientRequestToken: t1 })));
        await t.run('move AWSCURRENT onto its holder', t.client.send(new UpdateSecretVersionStageCommand({ SecretId: name, VersionStage: 'AWSCURRENT', MoveToVersionId: t1 })));
        await describeStages(t, name);
      });
      // The reference requires RemoveFromVersionId only when the label "is already attached to a different version".
      // Undocumented edge: a rotation function must not depend on either answer.
      expect(emulator.get('move AWSCURRENT onto its holder')).toEqual({ ok: 'ok' });
      expect(moto.get('move AWSCURRENT onto its holder')).toEqual({ error: 'InvalidParameterException' });
      expect(emulator.get('describe')).toEqual(moto.get('describe'));
    });

    it('answers ValidationException for a ClientRequestToken shorter than 32 characters (moto: InvalidParameterException)', async () => {
      const name = 'fidelity-diverge-token';
      const { emulator, moto } = await both(async (t) => {
        await t.run('create', t.client.send(new CreateSecretCommand({ Name: name, SecretString: 'v1', ClientRequestToken: token(14, 1) })));
        await t.run('put with a short token', t.client.send(new PutSecretValueCommand({ SecretId: name, ClientRequestToken: 'too-short', SecretString: 'v2' })));
      });
      // Model constraint (min 32) checked by the service framework, like every other AWS model constraint.
      expect(emulator.get('put with a short token')).toEqual({ error: 'ValidationException' });
      expect(moto.get('put with a short token')).toEqual({ error: 'InvalidParameterException' });
    });

    it('refuses RotateSecret while a previous rotation is pending (moto does not check)', async () => {
      const name = 'fidelity-diverge-rotate';
      const lambda = 'arn:aws:lambda:us-east-1:123456789012:function:fidelity-rotation';
      const [t1, t2] = [token(15, 1), token(15, 2)];
      const { emulator, moto } = await both(async (t) => {
        await t.run('create', t.client.send(new CreateSecretCommand({ Name: name, SecretString: 'v1', ClientRequestToken: t1 })));
        await t.run('put pending', t.client.send(new PutSecretValueCommand({ SecretId: name, ClientRequestToken: t2, SecretString: 'v2', VersionStages: ['AWSPENDING'] })));
        await t.run('rotate', t.client.send(new RotateSecretCommand({ SecretId: name, RotationLambdaARN: lambda, ClientRequestToken: token(15, 3) })));
      });
      // RotateSecret reference: with AWSPENDING on another version than AWSCURRENT, a later RotateSecret "returns an error".
      expect(emulator.get('rotate')).toEqual({ error: 'InvalidRequestException' });
      // moto 5.2.1 skips that check here and fails on looking up the Lambda function instead
      // (and raises "in progress" in the opposite case, AWSPENDING on the AWSCURRENT version).
      expect(moto.get('rotate')).toEqual({ error: 'ResourceNotFoundException' });
    });

    it('abandons a pending rotation when a new current version is put by hand (moto keeps AWSPENDING)', async () => {
      const name = 'fidelity-diverge-abandon';
      const [t1, t2, t3] = [token(16, 1), token(16, 2), token(16, 3)];
      const { emulator, moto } = await both(async (t) => {
        await t.run('create', t.client.send(new CreateSecretCommand({ Name: name, SecretString: 'v1', ClientRequestToken: t1 })));
        await t.run('put pending', t.client.send(new PutSecretValueCommand({ SecretId: name, ClientRequestToken: t2, SecretString: 'v2', VersionStages: ['AWSPENDING'] })));
        await t.run('put current by hand', t.client.send(new PutSecretValueCommand({ SecretId: name, ClientRequestToken: t3, SecretString: 'v3' })));
        await describeStages(t, name);
      });
      // CloudTrail RotationAbandoned: "When you manually create a new version of a secret ... Secrets Manager removes the AWSPENDING label".
      expect(emulator.get('describe')).toEqual({ ok: { Name: name, VersionIdsToStages: { [t1]: ['AWSPREVIOUS'], [t3]: ['AWSCURRENT'] } } });
      expect(moto.get('describe')).toEqual({ ok: { Name: name, VersionIdsToStages: { [t1]: ['AWSPREVIOUS'], [t2]: ['AWSPENDING'], [t3]: ['AWSCURRENT'] } } });
    });

    it('refuses to re-create a name scheduled for deletion with InvalidRequestException (moto: ResourceExistsException)', async () => {
      const name = 'fidelity-diverge-recreate';
      const { emulator, moto } = await both(async (t) => {
        await t.run('create', t.client.send(new CreateSecretCommand({ Name: name, SecretString: 'v1', ClientRequestToken: token(18, 1) })));
        await t.run('delete', t.client.send(new DeleteSecretCommand({ SecretId: name })));
        await t.run('create again', t.client.send(new CreateSecretCommand({ Name: name, SecretString: 'v1', ClientRequestToken: token(18, 2) })));
      });
      // AWS answers "You can't create this secret because a secret with this name is already scheduled for deletion."
      // (recorded against AWS in LocalStack's snapshot tests; not in the API reference).
      expect(emulator.get('create again')).toEqual({ error: 'InvalidRequestException' });
      expect(moto.get('create again')).toEqual({ error: 'ResourceExistsException' });
    });

    it('names the missing staging label in the error message (moto: "can\'t find the specified secret.")', async () => {
      const name = 'fidelity-diverge-message';
      const messages: Record<string, string> = {};
      for (const [backend, client] of [['emulator', emulatorClient], ['moto', motoClient]] as const) {
        await client.send(new CreateSecretCommand({ Name: name, SecretString: 'v1', ClientRequestToken: token(17, 1) }));
        const error = await client.send(new GetSecretValueCommand({ SecretId: name, VersionStage: 'AWSPENDING' })).catch((e: Error) => e);
        messages[backend] = (error as Error).message;
      }
      // Reference note: "Secrets Manager can't find the specified secret value for staging label: ...".
      expect(messages.emulator).toBe("Secrets Manager can't find the specified secret value for staging label: AWSPENDING");
      expect(messages.moto).toBe("Secrets Manager can't find the specified secret.");
    });
  });
});
