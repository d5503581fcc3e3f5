/**
 * Shared by the emulator's own tests: an emulator listening on an ephemeral
 * port with an AWS SDK v3 client, and a fake rotation function that behaves
 * like AWS's rotation template while recording what it saw.
 */
import {
  DescribeSecretCommand,
  GetSecretValueCommand,
  PutSecretValueCommand,
  type SecretsManagerClient,
  UpdateSecretVersionStageCommand,
} from '@aws-sdk/client-secrets-manager';
import { SecretsManagerEmulator, type SecretsManagerEmulatorOptions } from './emulator.js';
import type { RotationEvent, RotationInvoker, RotationStep } from './rotation.js';
import { createSdkClient } from './sdk.js';

export const LAMBDA_ARN = 'arn:aws:lambda:us-east-1:123456789012:function:fake-rotation';

export interface Fixture {
  emulator: SecretsManagerEmulator;
  client: SecretsManagerClient;
  url: string;
  close(): Promise<void>;
}

/** `maxAttempts: 1` on the client by default: tests about faults opt into SDK retries explicitly. */
export async function startEmulator(options: SecretsManagerEmulatorOptions = {}, sdkMaxAttempts = 1): Promise<Fixture> {
  const emulator = new SecretsManagerEmulator(options);
  const server = await emulator.listen();
  const client = createSdkClient(server.url, { maxAttempts: sdkMaxAttempts });
  return {
    emulator,
    client,
    url: server.url,
    async close() {
      client.destroy();
      await server.close();
    },
  };
}

export interface FakeRotationObservation {
  event: RotationEvent;
  /** What GetSecretValue answered for the token version when the step started: its value or the error name. */
  pendingValue: { value?: string; error?: string };
  /** The token version's labels when the step started. */
  tokenStages: string[] | undefined;
}

export interface FakeRotation {
  invoker: RotationInvoker;
  seen: FakeRotationObservation[];
  /** Make the next `times` calls of a step throw. */
  failNext(step: RotationStep, times?: number): void;
}

/**
 * A rotation function talking to the emulator over HTTP through the SDK, as
 * the real one does: createSecret puts `<current>+1` under the token with
 * AWSPENDING unless a value is already there; finishSecret moves AWSCURRENT.
 */
export function fakeRotation(client: SecretsManagerClient, options: { skipFinishMove?: boolean } = {}): FakeRotation {
  const seen: FakeRotationObservation[] = [];
  const failures = new Map<RotationStep, number>();
  const invoker: RotationInvoker = async (event) => {
    const described = await client.send(new DescribeSecretCommand({ SecretId: event.SecretId }));
    const tokenStages = described.VersionIdsToStages?.[event.ClientRequestToken];
    const pendingValue: FakeRotationObservation['pendingValue'] = await client
      .send(new GetSecretValueCommand({ SecretId: event.SecretId, VersionId: event.ClientRequestToken }))
      .then((r): FakeRotationObservation['pendingValue'] => ({ value: r.SecretString }))
      .catch((e: Error) => ({ error: e.name }));
    seen.push({ event, pendingValue, tokenStages });

    const remaining = failures.get(event.Step) ?? 0;
    if (remaining > 0) {
      failures.set(event.Step, remaining - 1);
      throw new Error(`${event.Step} failed on purpose`);
    }
    if (event.Step === 'createSecret' && pendingValue.value === undefined) {
      const current = await client.send(new GetSecretValueCommand({ SecretId: event.SecretId }));
      await client.send(
        new PutSecretValueCommand({
          SecretId: event.SecretId,
          ClientRequestToken: event.ClientRequestToken,
          SecretString: `${current.SecretString}+1`,
          VersionStages: ['AWSPENDING'],
          RotationToken: event.RotationToken,
        }),
      );
    }
    if (event.Step === 'finishSecret' && !options.skipFinishMove) {
      const current = Object.entries(described.VersionIdsToStages ?? {}).find(([, stages]) => stages.includes('AWSCURRENT'))?.[0];
      if (current === event.ClientRequestToken) return;
      await client.send(
        new UpdateSecretVersionStageCommand({
          SecretId: event.SecretId,
          VersionStage: 'AWSCURRENT',
          MoveToVersionId: event.ClientRequestToken,
          RemoveFromVersionId: current,
        }),
      );
    }
  };
  return {
    invoker,
    seen,
    failNext(step, times = 1) {
      failures.set(step, times);
    },
  };
}

/** Deterministic ClientRequestTokens (36 characters, UUID-shaped). */
export const token = (n: number): string => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
