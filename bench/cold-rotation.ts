/**
 * The first rotation in a cold container: each sample is a fresh `node`
 * process (a new Lambda container) that imports the built function, then
 * serves one rotation through the local stack (cold), then a second (warm,
 * same process) for comparison. The emulators stay in this process.
 */
import { LocalStack } from '../infra/local/stack.js';
import { RemoteContainer } from './container/remote.js';
import { stackEnv } from './lib/lambda-env.js';
import { lastOutcome, seedMany, setRotationLambda } from './lib/stack.js';
import { summarize, type Summary } from './lib/stats.js';

export interface ColdRotationFigures {
  containers: number;
  /** The import of the bundle inside the container (Lambda's init phase). */
  initMs: Summary;
  firstRotationMs: Summary;
  /** The second rotation in the same process: the cold penalty is first − second. */
  secondRotationMs: Summary;
}

export async function measureColdRotation(containers: number): Promise<ColdRotationFigures> {
  const stack = await LocalStack.start();
  try {
    const secrets = await seedMany(stack, containers * 2, 'bench/cold');
    const env = stackEnv(stack);
    const init: number[] = [];
    const first: number[] = [];
    const second: number[] = [];
    for (let i = 0; i < containers; i++) {
      const container = await RemoteContainer.start(env);
      setRotationLambda(stack, (event) => container.invoke(event));
      try {
        init.push(container.importMs);
        for (const [k, times] of [first, second].entries()) {
          const secret = secrets[i * 2 + k]!;
          const started = performance.now();
          await stack.rotate(secret.arn);
          times.push(performance.now() - started);
          const outcome = lastOutcome(stack, secret.arn);
          if (!outcome.succeeded || outcome.attempts !== 1) {
            throw new Error(`rotation in a fresh container failed: ${outcome.errors.join('; ')} ${container.stderr.slice(0, 300)}`);
          }
        }
      } finally {
        await container.stop();
      }
    }
    return { containers, initMs: summarize(init), firstRotationMs: summarize(first), secondRotationMs: summarize(second) };
  } finally {
    await stack.close();
  }
}
