/**
 * Runs in a worker thread of a fuzzing child process. The main thread counts its calls in shared
 * memory (target.ts); when the count stops moving for `hangAfterMs`, the main thread is stuck in
 * one call, which no time check inside that thread can catch. The watchdog then says which input
 * it was and how to replay it, and ends the process.
 */
import fs from "node:fs";
import { CALLS, FAILED_AT } from "./target.ts";

interface Start {
  memory: SharedArrayBuffer;
  hangAfterMs: number;
  /** The command that replays input number N (0-based) of this run, with "{path}" for N. */
  replay: string;
  target: string;
}

declare const self: { onmessage: ((event: MessageEvent<Start>) => void) | null };

self.onmessage = (event: MessageEvent<Start>) => {
  const { memory, hangAfterMs, replay, target } = event.data;
  const progress = new Int32Array(memory, 0, 2);
  let last = -1;
  let since = Date.now();
  setInterval(() => {
    const calls = Atomics.load(progress, CALLS);
    if (calls !== last) {
      last = calls;
      since = Date.now();
      return;
    }
    if (Date.now() - since < hangAfterMs) return;
    const failedAt = Atomics.load(progress, FAILED_AT);
    const where =
      failedAt === 0
        ? `input ${calls - 1}; replay it with: ${replay.replace("{path}", String(calls - 1))}`
        : `while shrinking the counterexample from input ${failedAt - 1}; replay: ${replay.replace("{path}", String(failedAt - 1))}`;
    const seconds = Math.round((Date.now() - since) / 1000);
    fs.writeSync(2, `\nHANG ${target}: one call has not returned for ${seconds} s, ${where}\n(the replay prints the input before decoding it)\n`);
    process.kill(process.pid, "SIGKILL");
  }, 250);
};
