import os from 'node:os';

export interface Machine {
  cpuModel: string;
  cores: number;
  node: string;
  os: string;
  memoryGiB: number;
  /** 1-minute load average when the bench started: a busy machine inflates every timing. */
  loadAverage1m: number;
  /** The same when the bench ended (set by run.ts). */
  loadAverage1mAtEnd?: number;
}

export function describeMachine(): Machine {
  const cpus = os.cpus();
  return {
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    cores: os.availableParallelism?.() ?? cpus.length,
    node: process.version,
    os: `${os.type()} ${os.release()} (${os.platform()}/${os.arch()})`,
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    loadAverage1m: loadAverage(),
  };
}

/** 1-minute load average now. */
export function loadAverage(): number {
  return Math.round(os.loadavg()[0]! * 100) / 100;
}
