/** The machine a bench ran on, recorded next to every result. */
import os from 'node:os';

export interface MachineInfo {
  cpu_model: string;
  cores: number;
  total_memory_mib: number;
  node_version: string;
  platform: string;
  load_average_1m: number;
}

export function machineInfo(): MachineInfo {
  const cpus = os.cpus();
  return {
    cpu_model: cpus[0]?.model.trim() ?? 'unknown',
    cores: cpus.length,
    total_memory_mib: Math.round(os.totalmem() / 2 ** 20),
    node_version: process.version,
    platform: `${os.type()} ${os.release()} ${os.arch()}`,
    load_average_1m: Math.round((os.loadavg()[0] ?? 0) * 100) / 100,
  };
}
