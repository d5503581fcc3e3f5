/** Messages between the bench (parent) and a Lambda container child (worker.ts), over Node's IPC channel. */
export type ToContainer =
  | { type: 'invoke'; id: number; event: unknown }
  | { type: 'report' };

export type FromContainer =
  | { type: 'ready'; importMs: number; bootMs: number }
  | { type: 'result'; id: number; ok: true }
  | { type: 'result'; id: number; ok: false; name: string; message: string }
  | { type: 'report'; peakRssSampledBytes: number; maxRssKb: number; rssBytes: number; heapUsedBytes: number; heapTotalBytes: number; externalBytes: number; cpuUserMs: number; cpuSystemMs: number };
