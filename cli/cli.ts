import { defaultRuntime, type Runtime } from './context.js';
import type { ExitCode } from './diagnose.js';
import { CliError, explainError } from './errors.js';
import type { CommandContext, Output } from './io.js';
import { recoverCommand } from './commands/recover.js';
import { rotateCommand } from './commands/rotate.js';
import { statusCommand } from './commands/status.js';

/**
 * The CLI without a process: argv in, lines out, an exit code back. main.ts
 * wires it to process streams; tests call it in-process against the local
 * stack.
 */

export const MAIN_HELP = (cli: string) => `Usage: ${cli} <command> --secret-id ID [options]

Operator tools for a secret rotated by the Stytch rotation function, built on the
function's own code. Works against AWS or the local stack through the standard AWS
configuration (--endpoint-url or AWS_ENDPOINT_URL_SECRETS_MANAGER for the local stack).

Commands:
  status    versions, Stytch's secrets and the rotation configuration, with a verdict
            and the command that fixes it (exit 0 consistent, 1 attention, 2 drift, 3 error)
  rotate    start a rotation; --wait follows it to its end
  recover   apply the fixes status names that keep AWSCURRENT working (dry run unless --yes)

Run ${cli} <command> --help for a command's options. Secret values are never printed.`;

const COMMANDS: Record<string, (argv: string[], ctx: CommandContext) => Promise<ExitCode>> = {
  status: statusCommand,
  rotate: rotateCommand,
  recover: recoverCommand,
};

export interface RunOptions {
  io: Output;
  runtime?: Partial<Runtime>;
  /** How the operator runs this CLI, used in the commands it prints (default `npm run cli --`). */
  cli?: string;
}

export async function runCli(argv: string[], options: RunOptions): Promise<ExitCode> {
  const { io } = options;
  const cli = options.cli ?? 'npm run cli --';
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    const topic = command === 'help' ? rest[0] : undefined;
    if (topic && COMMANDS[topic]) return await runCli([topic, '--help'], options);
    (command === undefined ? io.err : io.out)(MAIN_HELP(cli));
    return command === undefined ? 3 : 0;
  }
  const run = COMMANDS[command];
  if (!run) {
    io.err(`Unknown command ${JSON.stringify(command)}: use status, rotate or recover (${cli} --help).`);
    return 3;
  }
  const ctx: CommandContext = { io, runtime: { ...defaultRuntime(), ...options.runtime }, cli, errorContext: {} };
  try {
    return await run(rest, ctx);
  } catch (error) {
    const message = explainError(error, ctx.errorContext);
    io.err(`Error: ${message}`);
    if (error instanceof CliError && error.usage) io.err(`See ${cli} ${command} --help.`);
    if (rest.includes('--json')) io.out(JSON.stringify({ error: message, exitCode: 3 }));
    return 3;
  }
}
