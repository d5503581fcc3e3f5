/**
 * The local Secrets Manager (DESIGN.md §6): import from here.
 *
 *   const sm = new SecretsManagerEmulator({ invokers: { [lambdaArn]: (event) => handler(event, context) } });
 *   const { url, close } = await sm.listen();          // AWS_ENDPOINT_URL_SECRETS_MANAGER=url
 *   const client = createSdkClient(url);               // or sm.handle('GetSecretValue', {...}) in-process
 *   await client.send(new RotateSecretCommand({ SecretId, RotationLambdaARN: lambdaArn }));
 *   sm.rotationHistory(SecretId);                      // steps, attempts, outcome
 *
 * Test helpers: inspect(), calls, addFault(), beginRotation(), reattemptPending(),
 * serviceEvents, startSchedule().
 */
export {
  SecretsManagerEmulator,
  type CallRecord,
  type FaultSpec,
  type RotationEvent,
  type RotationInvoker,
  type RotationRecord,
  type RotationStep,
  type SecretSnapshot,
  type SecretsManagerEmulatorOptions,
  type ServiceEvent,
  type StepRecord,
} from './emulator.js';
export { SecretsManagerServiceError } from './errors.js';
export { type RotationRules, rotationIntervalMs } from './schedule.js';
export { createSdkClient } from './sdk.js';
