/**
 * Runs the real `aws` CLI (botocore, not this project's SDK) against a local
 * endpoint, with dummy credentials and nothing from the developer's own AWS
 * configuration. Shared by the fidelity and integration tests.
 */
import { execFile } from 'node:child_process';
import { dirname } from 'node:path';
import { expect } from 'vitest';

const CLI_TIMEOUT_MS = 60_000;

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** A clean environment for the CLI (and shells that call it): no config files, no instance metadata, no pager. */
export function cliEnv(cli: string): NodeJS.ProcessEnv {
  return {
    PATH: `${dirname(cli)}:${process.env.PATH ?? ''}`,
    HOME: process.env.HOME ?? '/tmp',
    AWS_CONFIG_FILE: '/dev/null',
    AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_PAGER: '',
    ...(process.env.PYENV_ROOT ? { PYENV_ROOT: process.env.PYENV_ROOT } : {}),
  };
}

/** Runs a program; resolves with its exit code and output (never rejects). */
export function run(file: string, args: string[], env: NodeJS.ProcessEnv): Promise<Run> {
  return new Promise((resolve) => {
    execFile(file, args, { env, timeout: CLI_TIMEOUT_MS }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

/**
 * `aws --endpoint-url <url> --output json secretsmanager ...`, and the same
 * expecting success and JSON. Both are read when a command runs, so a suite
 * may find the CLI and start its endpoint in beforeAll.
 */
export function secretsManagerCli(cli: () => string, endpointUrl: () => string) {
  const aws = (...args: string[]): Promise<Run> =>
    run(cli(), ['--endpoint-url', endpointUrl(), '--output', 'json', 'secretsmanager', ...args], {
      ...cliEnv(cli()),
      AWS_ACCESS_KEY_ID: 'local',
      AWS_SECRET_ACCESS_KEY: 'local',
      AWS_DEFAULT_REGION: 'us-east-1',
    });
  const awsJson = async (...args: string[]): Promise<Record<string, unknown>> => {
    const result = await aws(...args);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    return JSON.parse(result.stdout) as Record<string, unknown>;
  };
  return { aws, awsJson };
}
