/**
 * The awsJson1_1 wire format, and the test helpers around the one entry
 * point: faults, the call log, inspect().
 */
import { CreateSecretCommand, GetSecretValueCommand, PutSecretValueCommand } from '@aws-sdk/client-secrets-manager';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SecretsManagerServiceError } from './errors.js';
import { type Fixture, startEmulator, token } from './test-fixture.js';

let fx: Fixture;

beforeEach(async () => {
  fx = await startEmulator();
});

afterEach(async () => {
  await fx.close();
});

/** A raw awsJson1_1 request, as an SDK sends it minus the signature. */
function post(target: string | undefined, body: string, url = fx.url): Promise<Response> {
  const headers: Record<string, string> = { 'Content-Type': 'application/x-amz-json-1.1' };
  if (target) headers['X-Amz-Target'] = target;
  return fetch(`${url}/`, { method: 'POST', headers, body });
}

describe('Wire protocol: awsJson1_1', () => {
  it('answers POST / with X-Amz-Target in application/x-amz-json-1.1, dates as epoch seconds', async () => {
    // Act: no Authorization header at all; SigV4 is not checked.
    const res = await post('secretsmanager.CreateSecret', JSON.stringify({ Name: 'raw', SecretString: 'v', ClientRequestToken: token(1) }));
    const read = await post('secretsmanager.GetSecretValue', JSON.stringify({ SecretId: 'raw' }));
    const body = (await read.json()) as { CreatedDate: unknown; SecretString: string };

    // Assess
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/x-amz-json-1.1');
    expect(res.headers.get('x-amzn-requestid')).toMatch(/^[0-9a-f-]{36}$/);
    expect(body.SecretString).toBe('v');
    expect(typeof body.CreatedDate).toBe('number');
    expect(Math.abs((body.CreatedDate as number) - Date.now() / 1000)).toBeLessThan(60);
  });

  it('answers errors with HTTP 400, {"__type", "Message"} and the x-amzn-ErrorType header', async () => {
    const res = await post('secretsmanager.GetSecretValue', JSON.stringify({ SecretId: 'nope' }));

    expect(res.status).toBe(400);
    expect(res.headers.get('x-amzn-errortype')).toBe('ResourceNotFoundException');
    expect(await res.json()).toEqual({ __type: 'ResourceNotFoundException', Message: "Secrets Manager can't find the specified secret." });
  });

  it('answers a missing required member with ValidationException', async () => {
    const res = await post('secretsmanager.GetSecretValue', '{}');

    expect(await res.json()).toEqual({
      __type: 'ValidationException',
      Message: "1 validation error detected: Value null at 'secretId' failed to satisfy constraint: Member must not be null",
    });
  });

  it('answers an unknown operation, a missing target, malformed JSON and a GET with client errors', async () => {
    const unknown = await post('secretsmanager.MakeCoffee', '{}');
    const noTarget = await post(undefined, '{}');
    const badJson = await post('secretsmanager.DescribeSecret', '{not json');
    const get = await fetch(`${fx.url}/`);

    expect([unknown.status, ((await unknown.json()) as { __type: string }).__type]).toEqual([400, 'UnknownOperationException']);
    expect([noTarget.status, ((await noTarget.json()) as { __type: string }).__type]).toEqual([400, 'UnknownOperationException']);
    expect([badJson.status, ((await badJson.json()) as { __type: string }).__type]).toEqual([400, 'SerializationException']);
    expect(get.status).toBe(404);
    await get.arrayBuffer();
  });

  it('closes promptly although SDK clients keep connections alive', async () => {
    await fx.client.send(new CreateSecretCommand({ Name: 'alive', SecretString: 'v', ClientRequestToken: token(1) }));

    const started = Date.now();
    await fx.close();

    expect(Date.now() - started).toBeLessThan(1000);
    fx = await startEmulator();
  });
});

describe('Method: handle', () => {
  it('serves in-process callers with the same results and errors as HTTP', async () => {
    await fx.emulator.handle('CreateSecret', { Name: 'inproc', SecretString: 'v', ClientRequestToken: token(1) });

    const overHttp = await fx.client.send(new GetSecretValueCommand({ SecretId: 'inproc' }));
    const inProcess = (await fx.emulator.handle('GetSecretValue', { SecretId: 'inproc' })) as { SecretString: string; VersionId: string };
    const error = await fx.emulator.handle('GetSecretValue', { SecretId: 'nope' }).catch((e: unknown) => e);

    expect(inProcess).toMatchObject({ SecretString: overHttp.SecretString, VersionId: overHttp.VersionId });
    expect(error).toBeInstanceOf(SecretsManagerServiceError);
    expect(error).toMatchObject({ name: 'ResourceNotFoundException', httpStatus: 400 });
  });
});

describe('Method: addFault', () => {
  it('fails "before" without effect, with HTTP 500 for InternalServiceError', async () => {
    fx.emulator.addFault({ operation: 'CreateSecret', mode: 'before' });

    const res = await post('secretsmanager.CreateSecret', JSON.stringify({ Name: 'f', SecretString: 'v', ClientRequestToken: token(1) }));

    expect(res.status).toBe(500);
    expect(((await res.json()) as { __type: string }).__type).toBe('InternalServiceError');
    await expect(fx.emulator.handle('DescribeSecret', { SecretId: 'f' })).rejects.toMatchObject({ name: 'ResourceNotFoundException' });
  });

  it('fails "after" the effect: the response is lost but the value is stored, and an SDK retry with the same token succeeds', async () => {
    // Prepare: a client with the SDK's default retries.
    const retrying = await startEmulator({}, 3);
    await retrying.client.send(new CreateSecretCommand({ Name: 'lost', SecretString: 'v1', ClientRequestToken: token(1) }));
    retrying.emulator.addFault({ operation: 'PutSecretValue', mode: 'after' });
    retrying.emulator.resetCalls();

    // Act
    const out = await retrying.client.send(new PutSecretValueCommand({ SecretId: 'lost', ClientRequestToken: token(2), SecretString: 'v2', VersionStages: ['AWSPENDING'] }));

    // Assess: the first call applied, failed with 500, and the SDK's retry was an idempotent repeat.
    expect(out.$metadata.attempts).toBe(2);
    expect(retrying.emulator.calls).toEqual([
      { operation: 'PutSecretValue', secretId: 'lost', error: 'InternalServiceError' },
      { operation: 'PutSecretValue', secretId: 'lost' },
    ]);
    expect(retrying.emulator.inspect('lost').versions[token(2)]).toEqual({ stages: ['AWSPENDING'], secretString: 'v2' });
    await retrying.close();
  });

  it('fails the given number of times with the given error type, then clears', async () => {
    fx.emulator.addFault({ operation: '*', mode: 'before', errorType: 'ThrottlingException', times: 2 });

    const first = await fx.emulator.handle('ListSecrets', {}).catch((e: SecretsManagerServiceError) => e);
    const second = await fx.emulator.handle('DescribeSecret', { SecretId: 'x' }).catch((e: SecretsManagerServiceError) => e);
    const third = await fx.emulator.handle('ListSecrets', {});
    fx.emulator.addFault({ operation: 'ListSecrets', mode: 'before', times: 5 });
    fx.emulator.clearFaults();

    expect(first).toMatchObject({ name: 'ThrottlingException', httpStatus: 400 });
    expect(second).toMatchObject({ name: 'ThrottlingException' });
    expect(third).toEqual({ SecretList: [] });
    await expect(fx.emulator.handle('ListSecrets', {})).resolves.toEqual({ SecretList: [] });
  });
});

describe('Property: calls', () => {
  it('records every operation with the secret id and error name, and never a value', async () => {
    await fx.client.send(new CreateSecretCommand({ Name: 'audited', SecretString: 'super-secret-value', ClientRequestToken: token(1) }));
    await fx.client.send(new GetSecretValueCommand({ SecretId: 'audited' }));
    await fx.client.send(new GetSecretValueCommand({ SecretId: 'missing' })).catch(() => undefined);

    expect(fx.emulator.calls).toEqual([
      { operation: 'CreateSecret', secretId: 'audited' },
      { operation: 'GetSecretValue', secretId: 'audited' },
      { operation: 'GetSecretValue', secretId: 'missing', error: 'ResourceNotFoundException' },
    ]);
    expect(JSON.stringify(fx.emulator.calls)).not.toContain('super-secret-value');

    fx.emulator.resetCalls();
    expect(fx.emulator.calls).toEqual([]);
  });
});

describe('Method: inspect', () => {
  it('snapshots a secret with every version, its labels and value', async () => {
    const { ARN } = await fx.client.send(new CreateSecretCommand({ Name: 'seen', SecretString: 'v1', ClientRequestToken: token(1) }));
    await fx.client.send(new PutSecretValueCommand({ SecretId: 'seen', ClientRequestToken: token(2), SecretString: 'v2' }));

    expect(fx.emulator.inspect(ARN!)).toEqual({
      arn: ARN,
      name: 'seen',
      rotationEnabled: false,
      versions: { [token(1)]: { stages: ['AWSPREVIOUS'], secretString: 'v1' }, [token(2)]: { stages: ['AWSCURRENT'], secretString: 'v2' } },
    });
  });
});
