/**
 * The operator CLI run in process against a World's emulators, through the real
 * SDK pipeline, with the World's clock (or the runtime overrides given, such as
 * an operator's clock that is minutes off).
 */
import { runCli } from '../../cli/cli.js';
import type { Runtime } from '../../cli/context.js';
import { CREDENTIALS_SECRET, STATE_TABLE, type World } from './world.js';

export async function cliInWorld(
  world: World,
  argv: string[],
  runtime: Partial<Runtime> = {},
): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(argv, {
    io: { out: (l) => out.push(l), err: (l) => err.push(l) },
    runtime: {
      env: { STYTCH_CREDENTIALS_SECRET_ID: CREDENTIALS_SECRET, STYTCH_API_BASE_URL: 'http://127.0.0.1:9', ROTATION_STATE_TABLE: STATE_TABLE },
      fetch: (world as unknown as { fetch: Runtime['fetch'] }).fetch,
      secretsManager: () => world.smClient,
      dynamoDB: () => world.dynamoClient,
      now: world.clock.now,
      sleep: async (ms) => world.advance(ms),
      ...runtime,
    },
  });
  return { code, out, err };
}
