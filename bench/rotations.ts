/**
 * Rotations through the local stack in this process (the stack's own
 * container): calls per clean rotation, per step (Secrets Manager, Stytch and
 * the state table); credentials reads over a warm container; wall time of
 * sequential warm rotations.
 */
import { CREDENTIALS_SECRET_NAME, LocalStack } from '../infra/local/stack.js';
import type { RotationEvent } from '../infra/local/secrets-manager/index.js';
import { consistent, lastOutcome, seedMany, setRotationLambda } from './lib/stack.js';
import { summarize, tally, type Summary } from './lib/stats.js';

export interface StepCalls {
  step: string;
  secretsManager: number;
  stytch: number;
  /** State table requests the stack's DynamoDB served during the step (SDK retries included). */
  dynamodb: number;
  /** e.g. `DescribeSecret, GetSecretValue×2`, `connected_app.get` and `UpdateItem×2`. */
  secretsManagerOps: string;
  stytchOps: string;
  dynamodbOps: string;
}

export interface RotationCalls {
  secretsManager: number;
  stytch: number;
  dynamodb: number;
  /** GetSecretValue of the credentials secret within this rotation. */
  credentialsReads: number;
  steps: StepCalls[];
}

export interface RotationFigures {
  /** The first rotation in a fresh container (includes reading the credentials); the secret's first rotation, so it binds it. */
  coldClean: RotationCalls;
  /** The first rotation of another secret in the same, now warm, container (binds that secret). */
  warmClean: RotationCalls;
  /** The next rotation of coldClean's secret, already bound: the state table's happy path. */
  laterClean: RotationCalls;
  /** A warm clean rotation of an M2M client (testSecret adds the client_credentials probe). */
  warmCleanM2M: RotationCalls;
  credentialsReads: { invocations: number; rotations: number; reads: number };
  warm: Summary & { warmup: number };
  /** Per-step wall time over the measured warm rotations, as the stack timed each invocation. */
  warmSteps: Record<string, Summary>;
  allConsistent: boolean;
}

export async function measureRotations(options: { warmRotations: number; warmup: number }): Promise<RotationFigures> {
  const stack = await LocalStack.start();
  try {
    // Every DynamoDB request the stack serves, counted once (before its effect), as the table would bill it.
    const dynamo: string[] = [];
    stack.interceptor = ({ service, operation, phase }) => {
      if (service === 'dynamodb' && phase === 'before') dynamo.push(operation);
    };
    // Attribute calls to steps: the steps of one rotation run one after another, so the
    // growth of the call logs across one invocation is that step's calls, and nothing else's.
    let record: StepCalls[] = [];
    setRotationLambda(stack, async (event: RotationEvent) => {
      const sm0 = stack.sm.calls.length;
      const st0 = stack.stytch.requests.length;
      const db0 = dynamo.length;
      try {
        await stack.invoke(event);
      } finally {
        const sm = stack.sm.calls.slice(sm0).map((c) => c.operation);
        const st = stack.stytch.requests.slice(st0).map((r) => r.operation);
        const db = dynamo.slice(db0);
        record.push({
          step: event.Step,
          secretsManager: sm.length,
          stytch: st.length,
          dynamodb: db.length,
          secretsManagerOps: tally(sm),
          stytchOps: tally(st),
          dynamodbOps: tally(db),
        });
      }
    });

    // 2 clean rotations + 5 for the credentials reads + the warm ones.
    const count = 2 + 5 + options.warmup + options.warmRotations;
    const secrets = await seedMany(stack, count, 'bench/rotation');
    let used = 0;
    const next = () => secrets[used++]!;

    const m2m = await stack.seedSecret({ name: 'bench/rotation-m2m', kind: 'm2m' });
    const cleanRotation = async (secret = next()): Promise<RotationCalls> => {
      stack.sm.resetCalls();
      stack.stytch.resetRequests();
      dynamo.length = 0;
      record = [];
      await stack.rotate(secret.arn);
      const outcome = lastOutcome(stack, secret.arn);
      if (!outcome.succeeded || outcome.attempts !== 1) throw new Error(`a clean rotation did not succeed first time: ${outcome.errors.join('; ')}`);
      const calls = stack.sm.calls.filter((c) => c.operation !== 'RotateSecret');
      const steps = record.splice(0);
      const sum = (key: 'secretsManager' | 'stytch' | 'dynamodb') => steps.reduce((n, s) => n + s[key], 0);
      if (sum('secretsManager') !== calls.length || sum('stytch') !== stack.stytch.requests.length || sum('dynamodb') !== dynamo.length) {
        throw new Error('calls were made outside the steps: the attribution would be wrong');
      }
      return {
        secretsManager: calls.length,
        stytch: stack.stytch.requests.length,
        dynamodb: dynamo.length,
        credentialsReads: calls.filter((c) => c.operation === 'GetSecretValue' && c.secretId === CREDENTIALS_SECRET_NAME).length,
        steps,
      };
    };

    // LocalStack.start loaded a fresh container and has not invoked it yet.
    const first = next();
    const coldClean = await cleanRotation(first);
    const warmClean = await cleanRotation();
    // The stack's window is 0: finishSecret retired the previous secret, so this one starts clean at Stytch.
    const laterClean = await cleanRotation(first);
    const warmCleanM2M = await cleanRotation(m2m);

    // 5 rotations = 20 invocations in one new container, then sequential warm rotations.
    stack.interceptor = undefined;
    setRotationLambda(stack, (event) => stack.invoke(event));
    await stack.newContainer();
    stack.sm.resetCalls();
    const invocationsBefore = stack.invocations.length;
    const rotations = 5;
    for (let i = 0; i < rotations; i++) await stack.rotate(next().arn);
    const credentialsReads = {
      invocations: stack.invocations.length - invocationsBefore,
      rotations,
      reads: stack.sm.calls.filter((c) => c.operation === 'GetSecretValue' && c.secretId === CREDENTIALS_SECRET_NAME).length,
    };

    // Same container, now warm; the first `warmup` rotations are not counted.
    for (let i = 0; i < options.warmup; i++) await stack.rotate(next().arn);
    const times: number[] = [];
    const stepTimes: Record<string, number[]> = {};
    for (let i = 0; i < options.warmRotations; i++) {
      const secret = next();
      const from = stack.invocations.length;
      const started = performance.now();
      await stack.rotate(secret.arn);
      times.push(performance.now() - started);
      for (const inv of stack.invocations.slice(from)) (stepTimes[inv.step] ??= []).push(inv.ms);
      if (!lastOutcome(stack, secret.arn).succeeded) throw new Error(`warm rotation ${i} failed: ${lastOutcome(stack, secret.arn).errors.join('; ')}`);
    }
    const warmSteps = Object.fromEntries(Object.entries(stepTimes).map(([step, ms]) => [step, summarize(ms)]));
    return {
      coldClean,
      warmClean,
      laterClean,
      warmCleanM2M,
      credentialsReads,
      warm: { ...summarize(times), warmup: options.warmup },
      warmSteps,
      allConsistent: secrets.slice(0, used).every((s) => consistent(stack, s)),
    };
  } finally {
    await stack.close();
  }
}
