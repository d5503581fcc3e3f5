import { GetFunctionConfigurationCommand, type LambdaClient } from '@aws-sdk/client-lambda';
import { explainError } from './errors.js';

/**
 * Finding the stack without guesswork: what the rotation function itself is
 * configured with (its credentials secret, its state table), read from
 * Lambda's GetFunctionConfiguration. The function is named by --function-name,
 * or by the secret's own RotationLambdaARN.
 */

export type LambdaSend = Pick<LambdaClient, 'send'>;

/** The settings of the rotation function that the CLI needs too. */
export interface FunctionSettings {
  /** The function's name or ARN, as asked. */
  functionName: string;
  credentialsSecretId: string | undefined;
  stateTable: string | undefined;
  apiBaseUrl: string | undefined;
  /** The workspace management key's secret (project secrets only). */
  managementCredentialsSecretId: string | undefined;
  managementBaseUrl: string | undefined;
}

/** Where the function's settings came from, or why they could not be read. */
export type FunctionLookup = { kind: 'read'; settings: FunctionSettings } | { kind: 'failed'; functionName: string; reason: string } | { kind: 'none' };

export async function readFunctionSettings(lambda: LambdaSend, functionName: string): Promise<FunctionLookup> {
  try {
    const out = await lambda.send(new GetFunctionConfigurationCommand({ FunctionName: functionName }));
    const env = out.Environment?.Variables ?? {};
    return {
      kind: 'read',
      settings: {
        functionName,
        credentialsSecretId: env.STYTCH_CREDENTIALS_SECRET_ID || undefined,
        stateTable: env.ROTATION_STATE_TABLE || undefined,
        apiBaseUrl: env.STYTCH_API_BASE_URL || undefined,
        managementCredentialsSecretId: env.STYTCH_MANAGEMENT_CREDENTIALS_SECRET_ID || undefined,
        managementBaseUrl: env.STYTCH_MANAGEMENT_API_BASE_URL || undefined,
      },
    };
  } catch (error) {
    const name = error instanceof Error ? error.name : '';
    const reason =
      name === 'AccessDeniedException'
        ? `AWS refused lambda:GetFunctionConfiguration on ${functionName}`
        : name === 'ResourceNotFoundException'
          ? `Lambda has no function ${functionName} in this account and region`
          : explainError(error);
    return { kind: 'failed', functionName, reason };
  }
}

/** The region, as the AWS CLI picks it: --region, AWS_REGION, AWS_DEFAULT_REGION; else the SDK reads the profile's. */
export function regionFrom(flag: string | undefined, env: NodeJS.ProcessEnv): string | undefined {
  return flag ?? (env.AWS_REGION || undefined) ?? (env.AWS_DEFAULT_REGION || undefined);
}
