import { randomUUID } from 'node:crypto';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { MetricUnit, type Metrics } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { loadConfig, requireStateTable, resolveBaseUrl, type FunctionConfig } from '../lib/config.js';
import { isTransient } from '../lib/errors.js';
import { createLogger, createMetrics, type RotationLogger, type RotationMetric } from '../lib/observability.js';
import { isScheduledEvent, parseWith, rotationEventSchema, scheduledEventSchema } from '../lib/schemas.js';
import { SecretStore, type SecretsManagerSend } from '../lib/secrets/store.js';
import { LEASE_MARGIN_MS, type LeaseClock } from '../lib/state/lease.js';
import { StateTable, type DynamoDBSend } from '../lib/state/table.js';
import { CredentialsCache } from '../lib/stytch/credentials.js';
import { StytchHttp, type CredentialsSource, type FetchFn, type HttpOptions } from '../lib/stytch/http.js';
import { createManagementApi, fixedCredentials, managementCredentialsSource, probeProjectSecret } from '../lib/stytch/management.js';
import { clientKindOf, providerFor } from '../lib/stytch/index.js';
import { runStep, summary, type LeaseSettings, type RotationDeps, type StytchTarget } from './rotation.js';
import { runSweep } from './sweep.js';

/**
 * The Lambda entry: validate the event, add log keys, run one step, count the
 * outcome. Everything per container (SDK client, credentials cache, version
 * cache) lives in this closure, so tests build a fresh handler with their own
 * collaborators instead of patching module singletons.
 */
export interface HandlerOptions {
  secretsManager?: SecretsManagerSend;
  /** The state table's DynamoDB client (default: the SDK's, with standard endpoint resolution). */
  dynamoDB?: DynamoDBSend;
  fetch?: FetchFn;
  env?: NodeJS.ProcessEnv;
  logger?: Logger;
  metrics?: Metrics;
  /** Backoff sleep between Stytch retries (tests shorten it). */
  sleep?: (ms: number) => Promise<void>;
  /** The clock of leases and overlap windows, and the wait for a held lease (tests move time on). */
  clock?: Partial<LeaseClock>;
}

/** Time kept back from Stytch calls so the Secrets Manager work after them can finish. */
const RESERVE_MS = 3_000;
const DEFAULT_REMAINING_MS = 60_000;
/** How long a step waits for a lease another invocation holds before it fails as transient (VI). */
const LEASE_WAIT_MS = 10_000;
/** Retirements the sweep runs at once: two Stytch calls each, well under Stytch's rate limit. */
const SWEEP_CONCURRENCY = 8;
/** The sweep starts no retirement in its last stretch, so the ones under way can finish. */
const SWEEP_TAIL_MS = 10_000;

export function createHandler(options: HandlerOptions = {}) {
  const env = options.env ?? process.env;
  const logger = options.logger ?? createLogger();
  const metrics = options.metrics ?? createMetrics();
  const store = new SecretStore(options.secretsManager ?? new SecretsManagerClient({ maxAttempts: 3 }));
  let config: FunctionConfig | undefined;
  let credentials: CredentialsCache | undefined;
  let state: StateTable | undefined;
  let management: CredentialsSource | undefined;
  const clock: LeaseClock = {
    now: options.clock?.now ?? Date.now,
    sleep: options.clock?.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms))),
    random: options.clock?.random ?? Math.random,
  };

  const log: RotationLogger = {
    debug: (message, extra) => logger.debug(message, extra ?? {}),
    info: (message, extra) => logger.info(message, extra ?? {}),
    warn: (message, extra) => logger.warn(message, extra ?? {}),
    error: (message, extra) => logger.error(message, extra ?? {}),
  };
  const count = (name: RotationMetric) => metrics.addMetric(name, MetricUnit.Count, 1);

  async function rotationHandler(event: unknown, context: Context): Promise<void> {
    const sweep = isScheduledEvent(event);
    try {
      // Never log the event: it may carry a RotationToken (V).
      const step = sweep
        ? (parseWith(scheduledEventSchema, event, 'The scheduled event', 'The retirement sweep is started by the EventBridge schedule the deployment creates.'), undefined)
        : parseWith(
            rotationEventSchema,
            event,
            'The rotation event',
            'Secrets Manager sends {"Step", "SecretId", "ClientRequestToken"}; start rotations with aws secretsmanager rotate-secret rather than invoking this function directly.',
          );
      if (step) logger.appendKeys({ step: step.Step, secretId: step.SecretId, clientRequestToken: step.ClientRequestToken });
      else logger.appendKeys({ step: 'retirementSweep' });
      metrics.addDimension('Step', step ? step.Step : 'retirementSweep');

      config ??= loadConfig(env);
      const cfg = config;
      state ??= new StateTable(options.dynamoDB ?? new DynamoDBClient({ maxAttempts: 3 }), requireStateTable(cfg));
      // A cached project secret never outlives the overlap window: it may be the previous secret of a
      // rotation of the credentials secret itself, deleted when the window ends (DESIGN.md §4b).
      const ttlMs = cfg.graceSeconds > 0 ? Math.min(cfg.credentialsTtlMs, cfg.graceSeconds * 1000) : cfg.credentialsTtlMs;
      credentials ??= new CredentialsCache((id) => store.getCurrent(id), { ttlMs, envBaseUrl: cfg.apiBaseUrl, now: clock.now });
      const creds = credentials;
      const credentialsOf = (secret: StytchTarget) => creds.source(secret.stytch_credentials_secret_id ?? cfg.credentialsSecretId);

      // middy hands over {} when the invoker passes no context (a local run): ask for the time only if it can answer.
      const remaining = typeof context.getRemainingTimeInMillis === 'function' ? context.getRemainingTimeInMillis() : DEFAULT_REMAINING_MS;
      const started = Date.now();
      const deadline = Math.floor(started + remaining - Math.min(RESERVE_MS, remaining / 5));
      const lease: LeaseSettings = {
        holder: `${context.awsRequestId ?? 'local'}/${randomUUID()}`,
        // VI: the lease outlives this invocation's end by a margin for a request still in flight.
        until: clock.now() + remaining + LEASE_MARGIN_MS,
        waitUntil: clock.now() + Math.min(LEASE_WAIT_MS, remaining / 4),
        clock,
      };
      const httpOptions: HttpOptions = {
        fetch: options.fetch ?? globalThis.fetch,
        deadline,
        requestTimeoutMs: cfg.requestTimeoutMs,
        maxAttempts: cfg.maxAttempts,
        sleep: options.sleep,
        logger: log,
        onRetry: () => count('StytchRetry'),
      };
      const deps: RotationDeps = {
        store,
        state,
        lease,
        logger: log,
        metrics: { count },
        graceSeconds: cfg.graceSeconds,
        projectOf: async (secret: StytchTarget) => (await credentialsOf(secret).get()).projectId,
        stytch: (secret: StytchTarget) =>
          providerFor(
            clientKindOf(secret),
            new StytchHttp(credentialsOf(secret), httpOptions),
          ),
        projectSecrets: {
          management: () => {
            management ??= managementCredentialsSource((id) => store.getCurrent(id), cfg.managementCredentialsSecretId, {
              envBaseUrl: cfg.managementBaseUrl,
              ttlMs,
              now: clock.now,
            });
            return createManagementApi(new StytchHttp(management, httpOptions));
          },
          probe: (value, which) =>
            probeProjectSecret(
              new StytchHttp(
                fixedCredentials({ projectId: value.project_id, secret: value.secret, baseUrl: resolveBaseUrl(value.project_id, value.base_url, cfg.apiBaseUrl) }),
                httpOptions,
              ),
              value,
              which,
            ),
          inUseDeferSeconds: cfg.inUseDeferSeconds,
          onRotated: (arn, name) => creds.invalidate([arn, name]),
        },
      };

      if (!step) {
        try {
          // On the leases' clock, like every time the sweep compares (its budget is the same either way).
          const stopBy = clock.now() + (deadline - started) - Math.min(SWEEP_TAIL_MS, remaining / 4);
          const result = await runSweep({ ...deps, stopBy, concurrency: SWEEP_CONCURRENCY });
          count('SweepSucceeded');
          logger.info('Sweep succeeded', { result });
        } catch (error) {
          count('SweepFailed');
          throw error;
        }
        return;
      }
      const outcome = await runStep(step, deps);
      count('StepSucceeded');
      logger.info('Step succeeded', { outcome });
    } catch (error) {
      if (!sweep) count('StepFailed');
      logger.error(sweep ? 'Sweep failed' : 'Step failed', { error: summary(error), transient: isTransient(error) });
      throw error;
    }
  }

  return middy(rotationHandler)
    .use(injectLambdaContext(logger, { logEvent: false, resetKeys: true }))
    .use(logMetrics(metrics));
}
