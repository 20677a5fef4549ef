/**
 * Synchronous output that copes with pipes: partial writes and EAGAIN are retried, and a reader
 * that went away (EPIPE, e.g. `| head`) ends the program quietly, as it does for ss and netstat.
 */
import fs from "node:fs";

export class OutputClosed extends Error {}

const sleeper = new Int32Array(new SharedArrayBuffer(4));

export function writeAll(fd: number, text: string): void {
  let buf = Buffer.from(text);
  let waits = 0;
  while (buf.length > 0) {
    try {
      const n = fs.writeSync(fd, buf);
      buf = buf.subarray(n);
      waits = 0;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "EPIPE") throw new OutputClosed("output closed");
      // A non-blocking pipe that is full: wait briefly for the reader, for at most ~10 minutes.
      if (code === "EAGAIN" && waits < 600_000) {
        waits++;
        Atomics.wait(sleeper, 0, 0, 1);
        continue;
      }
      throw err;
    }
  }
}

export const stdout = (text: string) => writeAll(1, text);
export const stderr = (text: string) => {
  try {
    writeAll(2, text);
  } catch {
    // Nowhere left to report to.
  }
};
