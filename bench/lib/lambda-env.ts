import { CREDENTIALS_SECRET_NAME, STATE_TABLE_NAME, type LocalStack } from '../../infra/local/stack.js';

/**
 * The environment Lambda gives a Node function (plus what the local stack
 * adds), so module init in a child process does what it would in Lambda:
 * region, credentials and endpoint resolvable, Powertools seeing a function name.
 */
export function lambdaEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    LANG: 'C.UTF-8',
    TZ: ':UTC',
    AWS_REGION: 'us-east-1',
    AWS_DEFAULT_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'local',
    AWS_SECRET_ACCESS_KEY: 'local',
    AWS_EXECUTION_ENV: 'AWS_Lambda_nodejs22.x',
    AWS_LAMBDA_FUNCTION_NAME: 'stytch-secret-rotation-local',
    AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '256',
    AWS_LAMBDA_LOG_GROUP_NAME: '/aws/lambda/stytch-secret-rotation-local',
    AWS_LAMBDA_LOG_STREAM_NAME: 'bench',
    // Unreachable on purpose: module init must not call AWS (the cold-import probe never invokes).
    AWS_ENDPOINT_URL_SECRETS_MANAGER: 'http://127.0.0.1:9',
    AWS_ENDPOINT_URL_DYNAMODB: 'http://127.0.0.1:9',
    STYTCH_CREDENTIALS_SECRET_ID: CREDENTIALS_SECRET_NAME,
    // The function refuses every event without its state table.
    ROTATION_STATE_TABLE: STATE_TABLE_NAME,
    // LocalStack.start's default: the previous secret is retired in finishSecret.
    PREVIOUS_SECRET_GRACE_SECONDS: '0',
    POWERTOOLS_SERVICE_NAME: 'stytch-secret-rotation',
    // The bundled SDK (3.1164) reads this name; Lambda runs Node 22, where it never warns.
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    ...extra,
  };
}

/**
 * A container child of `stack`: Secrets Manager and the state table's DynamoDB
 * both answer on the stack's one port, as the in-process container reaches them.
 */
export function stackEnv(stack: LocalStack, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return lambdaEnv({ AWS_ENDPOINT_URL_SECRETS_MANAGER: stack.secretsManagerUrl, AWS_ENDPOINT_URL_DYNAMODB: stack.secretsManagerUrl, ...extra });
}
