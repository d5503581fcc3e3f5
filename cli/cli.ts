import { defaultRuntime, type Runtime } from './context.js';
import type { ExitCode } from './diagnose.js';
import { CliError, explainError } from './errors.js';
import type { CommandContext, Output } from './io.js';
import { bindCommand } from './commands/bind.js';
import { recoverCommand } from './commands/recover.js';
import { retireCommand } from './commands/retire.js';
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
configuration (--endpoint-url, or AWS_ENDPOINT_URL_SECRETS_MANAGER and
AWS_ENDPOINT_URL_DYNAMODB, for the local stack). The function's DynamoDB state table
(--state-table NAME or ROTATION_STATE_TABLE) holds each secret's binding to its
client, the lease that lets one change at a time reach a client, and overlap windows.

Commands:
  status    versions, Stytch's secrets, the binding, the lease and the overlap window,
            with a verdict and the command that fixes it
            (exit 0 consistent or overlap window, 1 attention, 2 drift, 3 error)
  rotate    start a rotation; --wait follows it to its end
  recover   apply the fixes status names that keep AWSCURRENT working (dry run unless --yes)
  retire    retire the previous secret now, before its overlap window ends (dry run unless --yes)
  bind      bind the secret to a client: an administrator's rebinding (dry run unless --yes)

recover --yes, retire and bind need the state table: they change a client only while
holding its lease there. Run ${cli} <command> --help for a command's options.
Secret values are never printed.`;

const COMMANDS: Record<string, (argv: string[], ctx: CommandContext) => Promise<ExitCode>> = {
  status: statusCommand,
  rotate: rotateCommand,
  recover: recoverCommand,
  retire: retireCommand,
  bind: bindCommand,
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
    io.err(`Unknown command ${JSON.stringify(command)}: use status, rotate, recover, retire or bind (${cli} --help).`);
    return 3;
  }
  // --json: the lines a command writes are collected into one JSON object, printed at the end (help stays text).
  const json = rest.includes('--json') && !rest.includes('--help') && !rest.includes('-h');
  const lines: string[] = [];
  const warnings: string[] = [];
  let result: Record<string, unknown> = {};
  const ctx: CommandContext = {
    io: json ? { out: (line) => lines.push(line), err: (line) => warnings.push(line) } : io,
    runtime: { ...defaultRuntime(), ...options.runtime },
    cli,
    errorContext: {},
    record: (fields) => {
      result = { ...result, ...fields };
    },
  };
  let exitCode: ExitCode;
  let error: string | undefined;
  try {
    exitCode = await run(rest, ctx);
  } catch (thrown) {
    error = explainError(thrown, ctx.errorContext);
    exitCode = 3;
    io.err(`Error: ${error}`);
    if (thrown instanceof CliError && thrown.usage) io.err(`See ${cli} ${command} --help.`);
  }
  if (json) {
    // status prints its own object (StatusJson); the other commands theirs, with the lines they wrote.
    const body = command === 'status' && error === undefined ? { ...result, exitCode } : { command, ...result, output: lines, warnings, ...(error === undefined ? {} : { error }), exitCode };
    io.out(JSON.stringify(body, null, 2));
  }
  return exitCode;
}
