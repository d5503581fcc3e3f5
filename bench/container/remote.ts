/**
 * The parent side of a Lambda container child: spawn it, send it events,
 * count what it prints. Registered as the local stack's rotation Lambda
 * (sm.registerInvoker), so RotateSecret → steps → this child, while both
 * emulators stay in the bench's process.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { CONTAINER_SCRIPT, FUNCTION_BUNDLE } from '../bundle.js';
import type { FromContainer, ToContainer } from './protocol.js';

export interface ContainerMemory {
  peakRssSampledBytes: number;
  maxRssKb: number;
  rssBytes: number;
  heapUsedBytes: number;
  heapTotalBytes: number;
  externalBytes: number;
  cpuUserMs: number;
  cpuSystemMs: number;
}

export class RemoteContainer {
  /** JSON lines the function printed on stdout and stderr (not kept: counted). */
  logLines = 0;
  /** Sum of the StytchRetry metric over the EMF lines the function printed. */
  stytchRetryMetric = 0;
  /** The function's "retrying" warnings by cause, e.g. `429 too_many_requests`, `0 network_error`. */
  readonly retryCauses: Record<string, number> = {};
  /** Non-JSON output (Node warnings, crashes), first 4000 characters. */
  stderr = '';
  importMs = 0;
  private nextId = 0;
  private readonly pending = new Map<number, { resolve: () => void; reject: (error: Error) => void }>();
  private reportWaiter: ((memory: ContainerMemory) => void) | undefined;
  private readonly partial = { stdout: '', stderr: '' };

  private constructor(private readonly child: ChildProcess) {}

  /** Spawns a fresh process (a cold container) and waits for the function's init to finish. */
  static async start(env: NodeJS.ProcessEnv, options: { bundle?: string; timeoutMs?: number; nodeArgs?: string[] } = {}): Promise<RemoteContainer> {
    const childEnv: NodeJS.ProcessEnv = {
      ...env,
      BENCH_BUNDLE: options.bundle ?? FUNCTION_BUNDLE,
      BENCH_TIMEOUT_MS: String(options.timeoutMs ?? 60_000),
    };
    delete childEnv.NODE_OPTIONS; // no tsx loader in the measured process
    const child = fork(CONTAINER_SCRIPT, [], { env: childEnv, execArgv: options.nodeArgs ?? [], stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
    const container = new RemoteContainer(child);
    // Powertools writes INFO to stdout and WARN/ERROR to stderr, as in Lambda: both are the function's log.
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => container.onOutput('stdout', chunk));
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => container.onOutput('stderr', chunk));
    await new Promise<void>((resolve, reject) => {
      child.once('exit', (code) => reject(new Error(`the container exited during init (code ${code}): ${container.stderr.slice(0, 500)}`)));
      child.on('message', (message: FromContainer) => {
        if (message.type === 'ready') {
          container.importMs = message.importMs;
          resolve();
        } else container.onMessage(message);
      });
    });
    child.removeAllListeners('exit');
    child.once('exit', () => {
      for (const { reject } of container.pending.values()) reject(new Error('the container exited'));
      container.pending.clear();
    });
    return container;
  }

  /** The Lambda invoke: resolves when the handler resolved, rejects with its error (name and message). */
  invoke(event: unknown): Promise<void> {
    const id = ++this.nextId;
    return new Promise<void>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.post({ type: 'invoke', id, event });
    });
  }

  memory(): Promise<ContainerMemory> {
    return new Promise((resolve) => {
      this.reportWaiter = resolve;
      this.post({ type: 'report' });
    });
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.disconnect();
    await exited;
  }

  private post(message: ToContainer): void {
    this.child.send(message);
  }

  private onMessage(message: FromContainer): void {
    if (message.type === 'result') {
      const waiter = this.pending.get(message.id);
      this.pending.delete(message.id);
      if (message.ok) waiter?.resolve();
      else waiter?.reject(Object.assign(new Error(message.message), { name: message.name }));
    } else if (message.type === 'report') {
      this.reportWaiter?.(message);
      this.reportWaiter = undefined;
    }
  }

  private onOutput(stream: 'stdout' | 'stderr', chunk: string): void {
    const lines = (this.partial[stream] + chunk).split('\n');
    this.partial[stream] = lines.pop() ?? '';
    for (const line of lines) {
      if (line.trim() === '') continue;
      if (!line.startsWith('{')) {
        // Not a log line (a Node warning, a crash): kept for error messages.
        if (this.stderr.length < 4000) this.stderr += `${line}\n`;
        continue;
      }
      this.logLines++;
      if (line.includes('"StytchRetry"')) this.stytchRetryMetric += stytchRetryOf(line);
      if (line.includes('Stytch request failed; retrying')) {
        const cause = retryCauseOf(line);
        this.retryCauses[cause] = (this.retryCauses[cause] ?? 0) + 1;
      }
    }
  }
}

/** The StytchRetry value of an EMF line: a number, or an array of values when added several times. */
export function stytchRetryOf(line: string): number {
  return metricOf(line, 'StytchRetry');
}

/** A metric's value in an EMF line (summed when it was added several times); 0 when absent or not JSON. */
export function metricOf(line: string, name: string): number {
  try {
    const value = (JSON.parse(line) as Record<string, unknown>)[name];
    if (typeof value === 'number') return value;
    if (Array.isArray(value)) return value.reduce((sum: number, v) => sum + (typeof v === 'number' ? v : 0), 0);
  } catch {
    // not JSON: not an EMF line
  }
  return 0;
}

/** `429 too_many_requests` from the function's retry warning (status and Stytch error type only). */
export function retryCauseOf(line: string): string {
  try {
    const entry = JSON.parse(line) as { statusCode?: unknown; errorType?: unknown };
    return `${String(entry.statusCode)} ${String(entry.errorType)}`;
  } catch {
    return 'unparsed';
  }
}
