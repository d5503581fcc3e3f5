/**
 * The CLI's clock for leases (VI): AWS's, not this machine's. A lease counts
 * as expired when its end is before the taker's clock, and the function's
 * clocks are Lambda's (synchronised); an operator's laptop may be minutes off,
 * which would let the CLI take over a live lease (clock ahead) or write one the
 * function soon takes over (clock behind). So the CLI reads the `Date` header
 * of every AWS answer and counts time from it. Its one-second resolution is
 * far inside the lease's 30 s margin. Without a Date header (an in-process
 * transport in tests), the local clock stands.
 */
export class AwsClock {
  private offsetMs = 0;

  constructor(private readonly localNow: () => number) {}

  /** Milliseconds since the epoch by AWS's clock (this machine's plus the last offset measured). */
  readonly now = (): number => this.localNow() + this.offsetMs;

  /** How far this machine's clock is behind AWS's (negative: ahead), as last measured. */
  get skewMs(): number {
    return this.offsetMs;
  }

  /** An HTTP Date header from an AWS answer: whole seconds, so the middle of that second is the best guess. */
  observe(date: string | undefined): void {
    const server = date === undefined ? NaN : Date.parse(date);
    if (Number.isFinite(server)) this.offsetMs = server + 500 - this.localNow();
  }

  /** Reads the Date header of every answer `client` gets, when it is an AWS SDK client (it has a middleware stack). */
  watch<T>(client: T): T {
    const stack = (client as { middlewareStack?: { add: (middleware: unknown, options: Record<string, unknown>) => void } }).middlewareStack;
    stack?.add(
      (next: (args: unknown) => Promise<{ response?: { headers?: Record<string, string | undefined> } }>) => async (args: unknown) => {
        const out = await next(args);
        this.observe(out.response?.headers?.date);
        return out;
      },
      { step: 'deserialize', name: 'awsClock', override: true },
    );
    return client;
  }
}
