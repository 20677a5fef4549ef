/**
 * The kernel's clocks as the Linux engine reads them: USER_HZ for /proc's process times, and
 * CLOCK_MONOTONIC for the sensor's record times.
 */
import { libc } from "./libc.ts";

const _SC_CLK_TCK = 2;
const CLOCK_MONOTONIC = 1;

let clockTicks: number | null = null;

/** USER_HZ, the unit of /proc's process times. */
export function clockTicksPerSecond(): number {
  if (clockTicks === null) {
    clockTicks = 100;
    try {
      const v = libc().sysconf(_SC_CLK_TCK);
      if (v > 0) clockTicks = v;
    } catch {
      // Without koffi (the /proc fallback on a box where it cannot load) assume the usual 100 Hz:
      // start times are for people, while start ids, which are compared, are in ticks.
    }
  }
  return clockTicks;
}

let monotonicRead: (() => Buffer) | null = null;

function monotonicTimespec(): Buffer {
  if (!monotonicRead) {
    const { clockGettime } = libc();
    const ts = Buffer.alloc(16);
    monotonicRead = () => {
      clockGettime(CLOCK_MONOTONIC, ts);
      return ts;
    };
  }
  return monotonicRead();
}

/** CLOCK_MONOTONIC in ms, the clock of bpf_ktime_get_ns. */
export function monotonicMs(): number {
  const ts = monotonicTimespec();
  return Number(ts.readBigInt64LE(0)) * 1000 + Number(ts.readBigInt64LE(8)) / 1e6;
}

/** CLOCK_MONOTONIC in ns, exact, as the sensor's records carry it. */
export function monotonicNs(): bigint {
  const ts = monotonicTimespec();
  return ts.readBigInt64LE(0) * 1_000_000_000n + ts.readBigInt64LE(8);
}
