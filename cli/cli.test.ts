import { describe, expect, it } from 'vitest';
import { runCli, type RunOptions } from './cli.js';
import { rotationOutcome } from './commands/rotate.js';
import type { SecretsManagerSend } from '../functions/lib/secrets/store.js';

/** The command line without any service: help, usage errors, error messages and exit codes. */

async function run(argv: string[], runtime?: RunOptions['runtime']) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(argv, { io: { out: (l) => out.push(l), err: (l) => err.push(l) }, ...(runtime ? { runtime } : {}) });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

/** A Secrets Manager that refuses every call the way AWS does. */
const refusing = (name: string, message: string): RunOptions['runtime'] => ({
  secretsManager: (): SecretsManagerSend => ({
    send: (async () => {
      throw Object.assign(new Error(message), { name });
    }) as SecretsManagerSend['send'],
  }),
});

describe('Function: runCli', () => {
  describe('help', () => {
    it('prints the commands for --help (exit 0), and on stderr with exit 3 when no command is given', async () => {
      const help = await run(['--help']);
      const none = await run([]);
      expect(help.code).toBe(0);
      expect(help.out).toContain('Commands:');
      expect(help.out).toMatch(/status[\s\S]*rotate[\s\S]*recover[\s\S]*retire[\s\S]*bind/);
      expect(help.out).toContain('--state-table NAME or ROTATION_STATE_TABLE');
      expect(none.code).toBe(3);
      expect(none.err).toContain('Commands:');
    });

    it.each([
      [
        'status',
        [
          '--json',
          'drift',
          'binding-mismatch',
          'half-done',
          'retirement-overdue',
          'orphan-next-secret',
          'dead-pending',
          'pending-without-value',
          'rotation-in-progress',
          'overlap-window',
          'Binding',
          'Lease',
          'Window',
          'Exit code',
        ],
      ],
      ['rotate', ['--wait', '--timeout', 'DescribeSecret']],
      ['recover', ['--yes', '--cancel-rotation', 'dry run', 'lease', 'waits up to 10 s']],
      ['retire', ['--yes', 'dry run', 'overlap window', "Stytch's rotate", 'lease', 'waits up to 10 s']],
      ['bind', ['--yes', '--client-id', '--project-id', 'dry run', 'put-secret-value', 'lease']],
    ])('prints the options of %s for --help and for help <command>, standing alone', async (command, words) => {
      const viaFlag = await run([command, '--help']);
      const viaHelp = await run(['help', command]);
      expect(viaFlag.code).toBe(0);
      expect(viaHelp.out).toBe(viaFlag.out);
      for (const word of [...words, '--secret-id', '--endpoint-url', '--credentials-secret-id', '--state-table', '--profile', '--region']) expect(viaFlag.out).toContain(word);
      expect(viaFlag.out).not.toMatch(/DESIGN|invariant/i);
    });
  });

  describe('usage errors (exit 3)', () => {
    it.each([
      [['frobnicate'], 'Unknown command "frobnicate"'],
      [['status'], '--secret-id is required'],
      [['status', '--secret-id', 'x', '--bogus'], "Unknown option '--bogus'"],
      [['status', '--secret-id'], 'argument missing'],
      [['recover', '--secret-id', 'x', 'extra'], 'Unexpected argument'],
      [['rotate', '--secret-id', 'x', '--wait', '--timeout', 'soon'], '--timeout must be a positive number of seconds'],
      [['rotate', '--secret-id', 'x', '--timeout', '5'], '--timeout only applies with --wait'],
      [['status', '--secret-id', 'x', '--region', ''], '--region must not be empty'],
      [['status', '--secret-id', 'x', '--state-table', ''], '--state-table must not be empty'],
      [['bind', '--secret-id', 'x', '--client-id', ''], '--client-id must not be empty'],
      [['retire', '--secret-id', 'x', '--cancel-rotation'], "Unknown option '--cancel-rotation'"],
    ])('%j: %s', async (argv, message) => {
      const result = await run(argv as string[]);
      expect(result.code).toBe(3);
      expect(result.err).toContain(message);
    });

    it('points at the command help after a usage error', async () => {
      expect((await run(['status'])).err).toContain('See npm run cli -- status --help.');
    });
  });

  describe('without a state table (exit 3 for the commands that change a client)', () => {
    // The secret has no rotation function whose settings could name a table: only DescribeSecret is answered.
    const calls: string[] = [];
    const noTable: RunOptions['runtime'] = {
      env: {},
      secretsManager: (): SecretsManagerSend => ({
        send: (async (command: { constructor: { name: string } }) => {
          calls.push(command.constructor.name);
          if (command.constructor.name === 'DescribeSecretCommand') return { ARN: 'arn:x', Name: 'x', VersionIdsToStages: {} };
          throw Object.assign(new Error('no call expected'), { name: 'ShouldNotBeCalled' });
        }) as unknown as SecretsManagerSend['send'],
      }),
    };
    it.each([
      [['recover', '--secret-id', 'x', '--yes'], "recover --yes needs the function's state table, and none is named"],
      [['retire', '--secret-id', 'x'], "retire needs the function's state table, and none is named"],
      [['bind', '--secret-id', 'x', '--yes'], "bind needs the function's state table, and none is named"],
    ])('%j refuses after DescribeSecret alone, naming --state-table and ROTATION_STATE_TABLE', async (argv, message) => {
      calls.length = 0;
      const result = await run(argv, noTable);
      expect(result.code).toBe(3);
      expect(calls).toEqual(['DescribeSecretCommand']);
      expect(result.err).toContain(message);
      expect(result.err).toContain('--state-table NAME or ROTATION_STATE_TABLE');
      expect(result.err).not.toContain('ShouldNotBeCalled');
    });
  });

  describe('access errors (exit 3)', () => {
    it('explains AccessDeniedException with where to look, and prints a JSON error for --json', async () => {
      const result = await run(['status', '--secret-id', 'prod/stytch', '--json'], refusing('AccessDeniedException', 'User is not authorized'));
      expect(result.code).toBe(3);
      expect(result.err).toContain('AWS refused the request (AccessDeniedException: User is not authorized)');
      expect(result.err).toContain('secret prod/stytch');
      expect(JSON.parse(result.out)).toMatchObject({ command: 'status', error: expect.stringContaining('AccessDeniedException'), exitCode: 3 });
    });

    it('explains missing AWS credentials', async () => {
      const result = await run(['status', '--secret-id', 'x'], refusing('CredentialsProviderError', 'Could not load credentials from any providers'));
      expect(result.err).toContain('No AWS credentials were found');
    });
  });
});

describe('Function: rotationOutcome', () => {
  const token = 'tttttttt-0000-4000-8000-000000000000';
  it.each([
    ['completed once the token is AWSCURRENT and nothing else is pending', { [token]: ['AWSCURRENT'], old: ['AWSPREVIOUS'] }, 'completed'],
    ['completed with AWSPENDING still on the token (the service cleans it up)', { [token]: ['AWSCURRENT', 'AWSPENDING'] }, 'completed'],
    ['pending while the token is AWSPENDING', { [token]: ['AWSPENDING'], old: ['AWSCURRENT'] }, 'pending'],
    ['pending while another version is AWSPENDING', { [token]: ['AWSCURRENT'], other: ['AWSPENDING'] }, 'pending'],
    ['cancelled when the token lost its labels without becoming AWSCURRENT', { old: ['AWSCURRENT'] }, 'cancelled'],
  ])('%s', (_name, stages, expected) => {
    expect(rotationOutcome({ VersionIdsToStages: stages }, token)).toBe(expected);
  });
});
