/**
 * Rotation rules and the accelerated rotation schedule.
 *
 * `rate(N days|hours|minutes)` and `AutomaticallyAfterDays` are scheduled;
 * `cron(...)` expressions are validated loosely, stored and shown by
 * DescribeSecret, but never fire here: evaluating cron windows (UTC days,
 * `Duration`) under an accelerated clock would add much code for no test
 * that needs it. A due secret with a pending rotation is reattempted with its
 * token, as the service does in the next rotation window.
 */
import { invalidParameter } from './errors.js';
import { type Input, readInteger, readString } from './input.js';

export interface RotationRules {
  AutomaticallyAfterDays?: number;
  ScheduleExpression?: string;
  Duration?: string;
}

const UNIT_MS = { minute: 60_000, hour: 3_600_000, day: 86_400_000 } as const;
const RATE = /^rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)$/;
const CRON = /^cron\((\S+\s+){5}\S+\)$/;
/** The service refuses schedules more frequent than every four hours. */
const MIN_INTERVAL_MS = 4 * UNIT_MS.hour;

export function readRotationRules(raw: Input): RotationRules {
  const days = readInteger(raw, 'AutomaticallyAfterDays', { min: 1, max: 1000 });
  const expression = readString(raw, 'ScheduleExpression', { min: 1, max: 256, pattern: /^[0-9A-Za-z()#?*\-/, ]+$/ });
  const duration = readString(raw, 'Duration', { min: 2, max: 3, pattern: /^[0-9]+h$/ });
  if (days !== undefined && expression !== undefined) {
    throw invalidParameter('You can set the rotation schedule with AutomaticallyAfterDays or ScheduleExpression, but not both.');
  }
  if (expression !== undefined) {
    const interval = rateIntervalMs(expression);
    if (interval === undefined && !CRON.test(expression)) {
      throw invalidParameter('Invalid ScheduleExpression: use rate(N hours|days) or a six-field cron() expression.');
    }
    if (interval !== undefined && interval < MIN_INTERVAL_MS) {
      throw invalidParameter('Invalid ScheduleExpression: you can rotate a secret at most every four hours.');
    }
  }
  if (duration !== undefined) {
    const hours = Number.parseInt(duration, 10);
    if (hours < 1 || hours > 24) throw invalidParameter('Invalid Duration: the rotation window must be between 1h and 24h.');
  }
  const rules: RotationRules = {};
  if (days !== undefined) rules.AutomaticallyAfterDays = days;
  if (expression !== undefined) rules.ScheduleExpression = expression;
  if (duration !== undefined) rules.Duration = duration;
  return rules;
}

function rateIntervalMs(expression: string): number | undefined {
  const match = RATE.exec(expression.trim());
  if (!match) return undefined;
  const unit = match[2]!.replace(/s$/, '') as keyof typeof UNIT_MS;
  return Number(match[1]) * UNIT_MS[unit];
}

/** The interval between scheduled rotations, or undefined when nothing is scheduled (no rules, or cron). */
export function rotationIntervalMs(rules: RotationRules | undefined): number | undefined {
  if (!rules) return undefined;
  if (rules.ScheduleExpression !== undefined) return rateIntervalMs(rules.ScheduleExpression);
  if (rules.AutomaticallyAfterDays !== undefined) return rules.AutomaticallyAfterDays * UNIT_MS.day;
  return undefined;
}

/** What the scheduler needs from the emulator, narrowed so it can be tested alone. */
export interface ScheduleTarget {
  /** ARNs and rules of secrets with rotation turned on (and not scheduled for deletion). */
  rotatingSecrets(): Array<{ arn: string; rules: RotationRules | undefined }>;
  hasPendingRotation(arn: string): boolean;
  isRotating(arn: string): boolean;
  rotate(arn: string): Promise<unknown>;
  reattemptPending(arn: string): Promise<unknown>;
}

export interface ScheduleOptions {
  /** Real milliseconds between two looks at the secrets. */
  tickMs: number;
  /** Simulated seconds per real second: 86400 makes "rate(1 day)" fire every second. */
  scale: number;
}

export function startSchedule(target: ScheduleTarget, options: ScheduleOptions, now: () => number): { stop(): void } {
  if (!(options.tickMs > 0) || !(options.scale > 0)) throw new RangeError('startSchedule needs tickMs > 0 and scale > 0');
  const realStart = now();
  const simulatedNow = (): number => (now() - realStart) * options.scale;
  // When each secret was last rotated (or first seen) on the simulated clock.
  const anchors = new Map<string, number>();
  let busy = false;

  const tick = async (): Promise<void> => {
    // A slow invoker must not make ticks pile up: skip until the previous one finished.
    if (busy) return;
    busy = true;
    try {
      const at = simulatedNow();
      for (const { arn, rules } of target.rotatingSecrets()) {
        const interval = rotationIntervalMs(rules);
        if (interval === undefined || target.isRotating(arn)) continue;
        const anchor = anchors.get(arn);
        if (anchor === undefined) {
          anchors.set(arn, at);
          continue;
        }
        if (at - anchor < interval) continue;
        anchors.set(arn, at);
        try {
          await (target.hasPendingRotation(arn) ? target.reattemptPending(arn) : target.rotate(arn));
        } catch {
          // Step failures are in the rotation history; a secret deleted meanwhile just drops out.
        }
      }
    } finally {
      busy = false;
    }
  };

  const timer = setInterval(() => void tick(), options.tickMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
