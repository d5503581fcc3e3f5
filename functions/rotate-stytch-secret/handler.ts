import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { MetricUnit, type Metrics } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { loadConfig, type FunctionConfig } from '../lib/config.js';
import { isTransient } from '../lib/errors.js';
import { createLogger, createMetrics, type RotationLogger, type RotationMetric } from '../lib/observability.js';
import { parseWith, rotationEventSchema, type RotatedSecret } from '../lib/schemas.js';
import { SecretStore, type SecretsManagerSend } from '../lib/secrets/store.js';
import { CredentialsCache } from '../lib/stytch/credentials.js';
import { StytchHttp, type FetchFn } from '../lib/stytch/http.js';
import { clientKindOf, providerFor } from '../lib/stytch/index.js';
import { runStep, summary, type RotationDeps } from './rotation.js';

/**
 * The Lambda entry: validate the event, add log keys, run one step, count the
 * outcome. Everything per container (SDK client, credentials cache, version
 * cache) lives in this closure, so tests build a fresh handler with their own
 * collaborators instead of patching module singletons.
 */
export interface HandlerOptions {
  secretsManager?: SecretsManagerSend;
  fetch?: FetchFn;
  env?: NodeJS.ProcessEnv;
  logger?: Logger;
  metrics?: Metrics;
  /** Backoff sleep between Stytch retries (tests shorten it). */
  sleep?: (ms: number) => Promise<void>;
}

/** Time kept back from Stytch calls so the Secrets Manager work after them can finish. */
const RESERVE_MS = 3_000;
const DEFAULT_REMAINING_MS = 60_000;

export function createHandler(options: HandlerOptions = {}) {
  const env = options.env ?? process.env;
  const logger = options.logger ?? createLogger();
  const metrics = options.metrics ?? createMetrics();
  const store = new SecretStore(options.secretsManager ?? new SecretsManagerClient({ maxAttempts: 3 }));
  let config: FunctionConfig | undefined;
  let credentials: CredentialsCache | undefined;

  const log: RotationLogger = {
    debug: (message, extra) => logger.debug(message, extra ?? {}),
    info: (message, extra) => logger.info(message, extra ?? {}),
    warn: (message, extra) => logger.warn(message, extra ?? {}),
    error: (message, extra) => logger.error(message, extra ?? {}),
  };
  const count = (name: RotationMetric) => metrics.addMetric(name, MetricUnit.Count, 1);

  async function rotationHandler(event: unknown, context: Context): Promise<void> {
    try {
      // Never log the event: it may carry a RotationToken (V).
      const parsed = parseWith(
        rotationEventSchema,
        event,
        'The rotation event',
        'Secrets Manager sends {"Step", "SecretId", "ClientRequestToken"}; start rotations with aws secretsmanager rotate-secret rather than invoking this function directly.',
      );
      logger.appendKeys({ step: parsed.Step, secretId: parsed.SecretId, clientRequestToken: parsed.ClientRequestToken });
      metrics.addDimension('Step', parsed.Step);

      config ??= loadConfig(env);
      const cfg = config;
      credentials ??= new CredentialsCache((id) => store.getCurrent(id), { ttlMs: cfg.credentialsTtlMs, envBaseUrl: cfg.apiBaseUrl });
      const creds = credentials;

      const remaining = typeof context?.getRemainingTimeInMillis === 'function' ? context.getRemainingTimeInMillis() : DEFAULT_REMAINING_MS;
      const deadline = Math.floor(Date.now() + remaining - Math.min(RESERVE_MS, remaining / 5));
      const deps: RotationDeps = {
        store,
        logger: log,
        metrics: { count },
        stytch: (secret: RotatedSecret) => {
          const kind = clientKindOf(secret);
          const http = new StytchHttp(creds.source(secret.stytch_credentials_secret_id ?? cfg.credentialsSecretId), {
            fetch: options.fetch ?? globalThis.fetch,
            deadline,
            requestTimeoutMs: cfg.requestTimeoutMs,
            maxAttempts: cfg.maxAttempts,
            sleep: options.sleep,
            logger: log,
            onRetry: () => count('StytchRetry'),
          });
          return providerFor(kind, http);
        },
      };

      const outcome = await runStep(parsed, deps);
      count('StepSucceeded');
      logger.info('Step succeeded', { outcome });
    } catch (error) {
      count('StepFailed');
      logger.error('Step failed', { error: summary(error), transient: isTransient(error) });
      throw error;
    }
  }

  return middy(rotationHandler)
    .use(injectLambdaContext(logger, { logEvent: false, resetKeys: true }))
    .use(logMetrics(metrics));
}
