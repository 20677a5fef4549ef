/**
 * One sockwarden per spool directory: a lock file holding the owner's PID and start time. A lock
 * whose process is gone (or whose PID now names another process) is stale and taken over, so a
 * daemon killed with SIGKILL does not block the next start.
 */
import fs from "node:fs";
import path from "node:path";
import { FileError } from "../errors.ts";

const LOCK_NAME = "lock";

/** A process's start as the OS counts it, to tell a reused PID; "" where unknown. */
export type StartTimeOf = (pid: number) => string;

function alive(pid: number, startTime: string, startTimeOf: StartTimeOf): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EPERM") return false;
  }
  return startTime === "" || startTimeOf(pid) === "" || startTimeOf(pid) === startTime;
}

export class SpoolLock {
  private constructor(private readonly file: string) {}

  /** Takes the directory's lock, or throws a FileError naming the sockwarden that holds it. */
  static take(dir: string, what: string, startTimeOf: StartTimeOf = () => ""): SpoolLock {
    const file = path.join(dir, LOCK_NAME);
    const mine = `${process.pid} ${startTimeOf(process.pid)}\n`;
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        fs.writeFileSync(file, mine, { flag: "wx", mode: 0o600 });
        return new SpoolLock(file);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      }
      let text = "";
      try {
        text = fs.readFileSync(file, "utf8");
      } catch {
        continue;
      }
      const [pidText = "", startTime = ""] = text.trim().split(" ");
      const pid = Number(pidText);
      if (Number.isSafeInteger(pid) && pid > 0 && pid !== process.pid && alive(pid, startTime, startTimeOf)) {
        throw new FileError(`${dir}: the spool of ${what} is in use by another sockwarden (PID ${pid}); give each daemon its own --state-dir`);
      }
      // Stale (or unreadable): the owner is gone.
      fs.rmSync(file, { force: true });
    }
    throw new FileError(`${dir}: cannot take the spool's lock file ${file}`);
  }

  release(): void {
    try {
      fs.rmSync(this.file, { force: true });
    } catch {
      // Nothing more can be done; the next start sees the owner gone.
    }
  }
}
