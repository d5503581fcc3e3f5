/**
 * An app that reads the rotated secret (DESIGN.md §7), as the README shows it
 * (examples/stytch-client-secret.mjs: Powertools Parameters' getSecret with
 * maxAge, and one re-read when Stytch rejects the secret), calling Stytch's
 * M2M token endpoint over and over while the built function rotates the
 * secret on the local stack and the sweep retires the previous one.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOCAL_LAMBDA_ARN, LocalStack, type SeededSecret } from '../../infra/local/stack.js';
import { builtBundle, ROOT } from './support.js';

const WINDOW_S = 2;

/** The README's example is plain JavaScript, as an app would have it; its shape, for this test. */
const { stytchClientSecret } = (await import(new URL('../../examples/stytch-client-secret.mjs', import.meta.url).href)) as {
  stytchClientSecret(
    secretId: string,
    options?: { maxAgeSeconds?: number },
  ): { withClientSecret<T>(call: (credentials: { client_id: string; client_secret: string }) => Promise<T>): Promise<T> };
};

describe('An app that caches the rotated secret (the README example, against the local stack)', () => {
  let stack: LocalStack;
  let bundle: Awaited<ReturnType<typeof builtBundle>>;

  beforeAll(async () => {
    bundle = await builtBundle();
    stack = await LocalStack.start({ bundlePath: bundle.path, graceSeconds: WINDOW_S });
  });
  afterAll(async () => {
    await stack?.close();
    bundle?.dispose();
  });

  async function seed(name: string): Promise<SeededSecret> {
    const seeded = await stack.seedSecret({ name, kind: 'm2m' });
    await stack.sm.handle('RotateSecret', {
      SecretId: seeded.arn,
      RotationLambdaARN: LOCAL_LAMBDA_ARN,
      RotationRules: { ScheduleExpression: 'rate(30 days)' },
      RotateImmediately: false,
    });
    return seeded;
  }

  /** What the app does with the secret: a client_credentials token request; Stytch's OAuth error is thrown as it comes. */
  function tokenCall(counts: { calls: number; rejected: number }) {
    return async (credentials: { client_id: string; client_secret: string }) => {
      counts.calls++;
      const res = await fetch(`${stack.stytchUrl}/v1/public/${stack.project.projectId}/oauth2/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'client_credentials', client_id: credentials.client_id, client_secret: credentials.client_secret }),
      });
      const body = (await res.json()) as Record<string, unknown>;
      if (!res.ok) {
        counts.rejected++;
        throw body;
      }
      return body;
    };
  }

  /** Calls every 25 ms in the background until stopped; failures the app would see are collected. */
  function keepCalling(run: () => Promise<unknown>) {
    const failures: unknown[] = [];
    let stopped = false;
    const loop = (async () => {
      while (!stopped) {
        await run().catch((error: unknown) => failures.push(error));
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    })();
    return {
      failures,
      stop: async () => {
        stopped = true;
        await loop;
      },
    };
  }

  async function rotateAndRetire(seeded: SeededSecret): Promise<void> {
    await stack.sm.handle('RotateSecret', { SecretId: seeded.arn });
    expect(stack.sm.rotationHistory(seeded.arn).at(-1)?.outcome).toBe('succeeded');
    // The window ends; a sweep after it retires the previous secret.
    await new Promise((resolve) => setTimeout(resolve, WINDOW_S * 1000 + 100));
    await stack.sweep();
  }

  it('with a cache lifetime shorter than the window, no call ever meets a rejected secret', async () => {
    const seeded = await seed('consumer/short-cache');
    const counts = { calls: 0, rejected: 0 };
    const app = stytchClientSecret(seeded.name, { maxAgeSeconds: 1 });
    const calling = keepCalling(() => app.withClientSecret(tokenCall(counts)));
    await rotateAndRetire(seeded);
    // Long enough for the app to have re-read the new AWSCURRENT and used it.
    await new Promise((resolve) => setTimeout(resolve, 1_200));
    await calling.stop();
    expect(calling.failures).toEqual([]);
    expect(counts.rejected).toBe(0);
    expect(counts.calls).toBeGreaterThan(60);
    expect(stack.stytch.clientState(seeded.clientId).nextClientSecretLast4).toBeNull();
  });

  it('with a cache that outlives the window, the one rejection after the sweep is absorbed by the re-read', async () => {
    const seeded = await seed('consumer/long-cache');
    const counts = { calls: 0, rejected: 0 };
    const app = stytchClientSecret(seeded.name, { maxAgeSeconds: 300 });
    const calling = keepCalling(() => app.withClientSecret(tokenCall(counts)));
    await rotateAndRetire(seeded);
    await new Promise((resolve) => setTimeout(resolve, 200));
    await calling.stop();
    expect(calling.failures).toEqual([]);
    expect(counts.rejected).toBe(1);
  });

  it('is the code the README shows', () => {
    const example = readFileSync(new URL('../../examples/stytch-client-secret.mjs', import.meta.url), 'utf8');
    expect(readFileSync(`${ROOT}README.md`, 'utf8')).toContain(example.trim());
  });
});
