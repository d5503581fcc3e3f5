import { randomUUID } from 'node:crypto';
import type { Context } from 'aws-lambda';

/** A Lambda context as the runtime passes it, with a real countdown of the remaining time. */
export function lambdaContext(options: { functionName?: string; functionArn?: string; timeoutMs?: number } = {}): Context {
  const started = Date.now();
  const timeoutMs = options.timeoutMs ?? 60_000;
  const functionName = options.functionName ?? 'stytch-secret-rotation-local';
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: options.functionArn ?? `arn:aws:lambda:us-east-1:123456789012:function:${functionName}`,
    memoryLimitInMB: '256',
    awsRequestId: randomUUID(),
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: 'local',
    getRemainingTimeInMillis: () => Math.max(0, timeoutMs - (Date.now() - started)),
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}
