/**
 * The spool of one network sink (webhook, OTLP, syslog over TCP) under the state directory:
 * `STATE_DIR/spool/<sink>-<hash>/`, one directory per target. Opened when the sink is made, so a
 * state directory that cannot be used stops the start with one line. A sink made again on reload
 * while its predecessor in this process still holds the directory waits for it to close, holding
 * what it is given in memory meanwhile, then starts with what the predecessor left.
 */
import crypto from "node:crypto";
import path from "node:path";
import { FileError, SockwardenError } from "../errors.ts";
import type { PlatformPlaces } from "../engine/index.ts";
import type { SinkProblemReporter, SpoolStats } from "./sink.ts";
import type { SinkRecord } from "./sink-record.ts";
import { boundedRecord } from "./record-bounds.ts";
import type { DeliveryQueue } from "./delivery-queue.ts";
import { Spool } from "./spool.ts";
import { errorText } from "./sink.ts";

/** Where records wait across restarts: SOCKWARDEN_STATE_DIR, else the platform's place. */
export function defaultStateDir(places: Pick<PlatformPlaces, "stateDir">): string {
  return process.env.SOCKWARDEN_STATE_DIR || places.stateDir();
}

export interface SpoolPlace {
  /** The state directory. */
  stateDir: string;
  /** The sink's full target (URL with its query, syslog target): one directory per target. */
  target: string;
  /** The platform's processStartTime, to tell a lock's owner from a process that reused its PID. */
  processStartTime?: (pid: number) => string;
}

/** The directory a sink's records wait in. */
export function spoolDir(place: SpoolPlace, sinkName: string): string {
  const slug = sinkName.replace(/[^A-Za-z0-9._-]+/g, "_").slice(0, 64);
  const hash = crypto.createHash("sha256").update(place.target).digest("hex").slice(0, 12);
  return path.join(place.stateDir, "spool", `${slug}-${hash}`);
}

/** Directories held in this process, with a promise that settles when the holder lets go. */
const held = new Map<string, Promise<void>>();

/**
 * Spools open now. A stop that runs out of time exits before the sinks have closed: the files
 * are synced, the cursor written and the locks let go on the way out all the same.
 */
const openSpools = new Set<SinkSpool>();
let exitHook = false;
function closeOnExit(spool: SinkSpool): void {
  openSpools.add(spool);
  if (exitHook) return;
  exitHook = true;
  process.once("exit", () => {
    for (const s of openSpools) s.closeOnExit();
  });
}

export interface SinkSpoolOptions {
  place: SpoolPlace;
  sinkName: string;
  /** The sink's queue, made paused. */
  queue: DeliveryQueue<SinkRecord>;
  /** The sink's queue bound: segments are a sixteenth of it (at least 16 KiB). */
  queueBytes: number;
  report?: SinkProblemReporter;
  /** Told what is not a problem (records from the last run going first). */
  note?: SinkProblemReporter;
}

export class SinkSpool {
  private spool: Spool | null = null;
  private closed = false;
  private restored = 0;
  private torn = 0;
  private readonly dir: string;
  private release: () => void = () => {};
  private readonly mine: Promise<void>;

  constructor(private readonly o: SinkSpoolOptions) {
    this.dir = spoolDir(o.place, o.sinkName);
    const before = held.get(this.dir);
    this.mine = new Promise<void>((resolve) => (this.release = resolve));
    held.set(this.dir, this.mine);
    if (before) {
      void before.then(() => this.open(false));
    } else {
      this.open(true);
    }
  }

  /** Opens the spool and starts the queue; at start (strict) a failure throws. */
  private open(strict: boolean): void {
    if (this.closed) return;
    try {
      const opened = Spool.open(this.dir, this.o.sinkName, Math.max(16 * 1024, Math.floor(this.o.queueBytes / 16)), (m) => this.tell(m), this.o.place.processStartTime);
      this.spool = opened.spool;
      closeOnExit(this);
      this.restored = opened.records.length;
      this.torn = opened.torn;
      if (opened.torn > 0) this.tell(`${opened.torn} line(s) of the spool in ${this.dir} were cut short or unreadable: skipped`);
      if (opened.records.length > 0) {
        this.tellNote(`${opened.records.length} record(s) kept in ${this.dir} from before go out first`);
      }
      // The files are not trusted more than any input: records are cut to their bounds again.
      this.o.queue.attach(opened.spool, opened.records.map(boundedRecord));
    } catch (err) {
      const message = err instanceof SockwardenError ? err.message : `${this.dir}: the state directory cannot be used (${errorText(err)}); give a writable --state-dir`;
      if (strict) {
        this.finish();
        throw new FileError(message);
      }
      this.tell(`${message}; records are held in memory only`);
      this.o.queue.attach(null, []);
    }
  }

  /** Syncs the spool and lets its directory go (call after the queue has closed). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    openSpools.delete(this);
    this.spool?.close();
    this.finish();
  }

  /** As close, when the process exits before the sink could close: says what it kept. */
  closeOnExit(): void {
    if (this.closed || !this.spool) return;
    const held = this.spool.held;
    this.close();
    if (held > 0) this.tellNote(`${held} record(s) not delivered before closing: kept in ${this.dir}, to go out first when the sink starts again`);
  }

  private finish(): void {
    this.closed = true;
    this.release();
    // Only this holder's entry goes: a successor waiting on it has put its own.
    if (held.get(this.dir) === this.mine) held.delete(this.dir);
  }

  stats(): SpoolStats {
    return { bytes: this.spool?.bytes ?? 0, restored: this.restored, torn: this.torn, kept: 0 };
  }

  private tell(message: string): void {
    try {
      this.o.report?.(this.o.sinkName, message);
    } catch {
      // A reporter that fails must not take the sink with it.
    }
  }

  private tellNote(message: string): void {
    try {
      (this.o.note ?? this.o.report)?.(this.o.sinkName, message);
    } catch {
      // As above.
    }
  }
}
