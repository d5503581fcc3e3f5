/**
 * Latencies and faults on every call the function makes, through the local
 * stack's interceptors (stack.interceptor for Secrets Manager and DynamoDB,
 * stack.stytch.interceptor for Stytch), each attributed to the trial whose
 * secret or client it names.
 *
 * Several trials run at once: the AWS interceptor is told what each call
 * names (the Secrets Manager SecretId, the state table item's key, client#…
 * or secret#…), which gives its trial. A call that names no trial (the
 * credentials secret, the sweep's Scan) gets a latency and never a fault.
 *
 * A trial is also told of every effect at once (`afterEffect`), before the
 * answer is delayed or lost, so its invariants are checked at each state
 * change, not only by its poller.
 */
import type { LocalStack } from '../../../infra/local/stack.js';
import { Rng } from './random.js';

export type Service = 'secretsmanager' | 'dynamodb' | 'stytch';
export type Phase = 'before' | 'after';

/** What a trial exposes to the network: its chaos and a hook at every effect. */
export interface NetworkParty {
  readonly chaos: Chaos;
  /** Called synchronously right after a call's effect (before its answer is delayed or lost). */
  afterEffect(service: Service, operation: string): void;
  /** Called synchronously right after a Stytch call's effect, with the fault about to be applied to its answer. */
  afterStytchEffect(operation: string, answerLost: boolean): void;
}

/** Latencies and faults for one trial, drawn from its seed, one stream per (service, operation, phase). */
export class Chaos {
  /** Faults injected, in order, for the trial's report. */
  readonly injected: string[] = [];
  /** Off during the end checks: they must see the function's own behaviour, not a fault's. */
  enabled = true;
  private readonly streams = new Map<string, Rng>();
  private readonly faulted = new Set<string>();

  constructor(
    private readonly rng: Rng,
    private readonly faulty: boolean,
    private readonly options: { faultRate: number; maxFaults: number },
  ) {}

  private stream(label: string): Rng {
    let stream = this.streams.get(label);
    if (!stream) this.streams.set(label, (stream = this.rng.fork(label)));
    return stream;
  }

  /** A few ms mostly, sometimes tens: enough to reorder calls of overlapping invocations. */
  latency(service: Service, operation: string, phase: Phase): number {
    return drawLatency(this.stream(`latency ${service} ${operation} ${phase}`));
  }

  /**
   * Whether this call fails. At most maxFaults per trial, and never twice on
   * one (service, operation): a request the client retries must get through,
   * or a trial could not end. (It also keeps clear of a quirk of the local
   * stack: answering an injected DynamoDB 500 runs the after phase a second
   * time, and a second 'fail' there throws ERR_HTTP_HEADERS_SENT.)
   */
  fault(service: Service, operation: string, phase: Phase, describe: string): boolean {
    if (!this.faulty || !this.enabled || this.injected.length >= this.options.maxFaults) return false;
    const key = `${service} ${operation}`;
    if (this.faulted.has(key) || !faultable(service, operation)) return false;
    if (!this.stream(`fault ${service} ${operation} ${phase}`).chance(this.options.faultRate)) return false;
    this.faulted.add(key);
    this.injected.push(describe);
    return true;
  }
}

export function drawLatency(rng: Rng): number {
  return rng.weighted([
    [rng.int(0, 2), 60],
    [rng.int(3, 9), 30],
    [rng.int(10, 40), 10],
  ]);
}

/** Every attributed call may fail; the Scan names no trial, so it never does. */
function faultable(service: Service, operation: string): boolean {
  return !(service === 'dynamodb' && operation === 'Scan');
}

interface CallOwner {
  party: NetworkParty | undefined;
  operation: string;
}

/** Routes calls to the trial that owns the secret or client they name. */
export class Network {
  private readonly bySecret = new Map<string, NetworkParty>();
  private readonly byClient = new Map<string, NetworkParty>();
  /** Project-secret trials: by project id and project slug (what a management or probe request names). */
  private readonly byProject = new Map<string, NetworkParty>();
  /** For calls that name no trial. */
  private readonly anonymous: Rng;
  /** Calls the wrappers could attribute to no trial, by service (the credentials secret, Scan, …). */
  readonly unattributed: Record<string, number> = {};
  /** Calls by service and operation (the before phase), for the summary. */
  readonly calls: Record<string, number> = {};

  constructor(seed: number) {
    this.anonymous = new Rng(seed).fork('anonymous calls');
  }

  register(party: NetworkParty, names: { arn: string; name: string; clientId: string }): void {
    this.bySecret.set(names.arn, party);
    this.bySecret.set(names.name, party);
    this.byClient.set(names.clientId, party);
  }

  unregister(names: { arn: string; name: string; clientId: string }): void {
    this.bySecret.delete(names.arn);
    this.bySecret.delete(names.name);
    this.byClient.delete(names.clientId);
  }

  /** A project-secret trial: the calls through the Stytch proxy (project-proxy.ts) that name its project are its. */
  registerProject(party: NetworkParty, keys: string[]): void {
    for (const key of keys) this.byProject.set(key, party);
  }

  unregisterProject(keys: string[]): void {
    for (const key of keys) this.byProject.delete(key);
  }

  /** The proxy's call: a latency, and whether it fails (the connection dropped) before or after its effect. */
  decideProxied(projectKey: string | undefined, operation: string, phase: Phase): Promise<boolean> | boolean {
    return this.decide(projectKey === undefined ? undefined : this.byProject.get(projectKey), 'stytch', operation, phase);
  }

  install(stack: LocalStack): void {
    stack.interceptor = (call) => {
      const owner = call.service === 'dynamodb' ? this.dynamoOwner(call.operation, call.target, call.expression) : this.secretOwner(call.operation, call.target);
      const verdict = this.decide(owner.party, call.service, owner.operation, call.phase);
      return typeof verdict === 'boolean' ? failWhen(verdict) : verdict.then(failWhen);
    };
    stack.stytch.interceptor = (call) => {
      const party = call.clientId === undefined ? undefined : this.byClient.get(call.clientId);
      const verdict = this.decide(party, 'stytch', call.operation, call.phase);
      return typeof verdict === 'boolean' ? dropWhen(verdict) : verdict.then(dropWhen);
    };
    this.uninstall = () => {
      stack.interceptor = undefined;
      stack.stytch.interceptor = undefined;
    };
  }

  /** Puts back what install() replaced. */
  uninstall: () => void = () => undefined;

  private secretOwner(operation: string, secretId: string | undefined): CallOwner {
    return { party: secretId === undefined ? undefined : this.bySecret.get(secretId), operation };
  }

  /** DynamoDB: the key names the trial; the lease-taking write is told apart from the release, for the summary. */
  private dynamoOwner(operation: string, pk: string | undefined, expression: string | undefined): CallOwner {
    let party: NetworkParty | undefined;
    if (pk?.startsWith('secret#')) party = this.bySecret.get(pk.slice('secret#'.length));
    else if (pk?.startsWith('client#')) party = this.byClient.get(pk.slice(pk.indexOf('#', 'client#'.length) + 1));
    const kind = operation === 'UpdateItem' ? (/^SET\b.*\blease_holder = :holder/.test(expression ?? '') ? ':take' : ':release') : '';
    return { party, operation: operation + kind };
  }

  private decide(party: NetworkParty | undefined, service: Service, operation: string, phase: Phase): Promise<boolean> | boolean {
    if (phase === 'before') this.calls[`${service} ${operation}`] = (this.calls[`${service} ${operation}`] ?? 0) + 1;
    if (!party) {
      this.unattributed[service] = (this.unattributed[service] ?? 0) + 1;
      return delay(drawLatency(this.anonymous), false);
    }
    const how = service === 'stytch' ? 'connection dropped' : 'InternalServerError';
    const fails = party.chaos.fault(service, operation, phase, `${service} ${operation}: ${how} ${phase} the effect`);
    if (phase === 'after') {
      if (service === 'stytch') party.afterStytchEffect(operation, fails);
      else party.afterEffect(service, operation);
    }
    return delay(party.chaos.latency(service, operation, phase), fails);
  }
}

function delay(ms: number, fails: boolean): Promise<boolean> | boolean {
  if (ms <= 0) return fails;
  return new Promise((resolve) => setTimeout(() => resolve(fails), ms));
}

const failWhen = (fails: boolean): 'fail' | void => (fails ? 'fail' : undefined);
const dropWhen = (fails: boolean): 'drop' | void => (fails ? 'drop' : undefined);
