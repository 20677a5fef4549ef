/**
 * A network sink's records on disk, so that what is not delivered when the daemon stops (or
 * dies) goes out at the next start. The spool mirrors the sink's queue: every record the queue
 * takes is appended, as one JSON line, to a segment file; records leave it as the queue lets go
 * of them (delivered, given up on, dropped as the oldest), so the queue's byte bound bounds the
 * spool too.
 *
 * Segments are named by the number of the first line they hold, counting every line ever
 * written; `cursor` holds "H K G": lines before H are gone, then K lines are being delivered,
 * then G lines were dropped behind them (the queue drops its oldest waiting records, which follow
 * the batch in flight). Writes are appended without waiting for the disk; the files are synced
 * when the sink closes. At open, a last line cut short (the process died mid-write) or a line that
 * does not read as a record is skipped and counted; the records still held are rewritten into one
 * fresh segment and the old ones removed, so every later line number is exact.
 */
import fs from "node:fs";
import path from "node:path";
import type { SinkRecord } from "./sink-record.ts";
import { recordBytes } from "./record-bounds.ts";
import { SpoolLock } from "./spool-lock.ts";
import { errorText } from "./sink.ts";

const SEGMENT = /^(\d{16})\.ndjson$/;
const CURSOR = "cursor";

/** What a queue tells the store behind it, in the queue's order. */
export interface QueueStore<T> {
  /** What holding an item costs; the queue bounds the sum. */
  sizeOf(item: T): number;
  /** Items the queue took, oldest first. */
  added(items: readonly T[]): void;
  /** The queue took its next batch of n items for delivery. */
  taken(n: number): void;
  /** The batch in flight is finished with (delivered or given up on). */
  done(): void;
  /** The n oldest waiting items (after the batch in flight) were dropped. */
  dropped(n: number): void;
  /** Where the store keeps items, for messages. */
  readonly where: string;
  /** False once the store failed to keep up: what the queue still holds is in memory only. */
  readonly durable: boolean;
}

interface Segment {
  start: number;
  lines: number;
  bytes: number;
  name: string;
}

export interface OpenedSpool {
  spool: Spool;
  /** Records left by the last run, oldest first: they go before anything new. */
  records: SinkRecord[];
  /** Lines skipped: cut short, or not a record. */
  torn: number;
}

export class Spool implements QueueStore<SinkRecord> {
  private segments: Segment[] = [];
  private fd: number | null = null;
  private head = 0;
  private inFlight = 0;
  private gap = 0;
  private end = 0;
  private broken: string | null = null;
  /** A record's line, from sizeOf until added() writes it (then it is let go, not held twice). */
  private readonly lines = new WeakMap<SinkRecord, string>();
  /** The size on disk of records read back at open (already written: no line is kept for them). */
  private readonly readBack = new WeakMap<SinkRecord, number>();

  private constructor(
    readonly where: string,
    private readonly lock: SpoolLock,
    private readonly segmentBytes: number,
    private readonly onError: (message: string) => void,
  ) {}

  /**
   * Opens (creating, mode 0700) the directory, takes its lock and reads what the last run left.
   * Throws a FileError when the directory cannot be used or another sockwarden holds it.
   */
  static open(dir: string, what: string, segmentBytes: number, onError: (message: string) => void, processStartTime?: (pid: number) => string): OpenedSpool {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const lock = SpoolLock.take(dir, what, processStartTime);
    try {
      const spool = new Spool(dir, lock, Math.max(4096, segmentBytes), onError);
      const { records, torn } = spool.load();
      return { spool, records, torn };
    } catch (err) {
      lock.release();
      throw err;
    }
  }

  get durable(): boolean {
    return this.broken === null;
  }

  /** Bytes of the segment files. */
  get bytes(): number {
    return this.segments.reduce((sum, s) => sum + s.bytes, 0);
  }

  /** The line the record takes on disk, newline included. */
  private line(r: SinkRecord): string {
    let line = this.lines.get(r);
    if (line === undefined) {
      line = `${JSON.stringify(r)}\n`;
      this.lines.set(r, line);
    }
    return line;
  }

  /** The larger of the record's memory cost and its size on disk, so one bound covers both. */
  sizeOf(r: SinkRecord): number {
    return Math.max(recordBytes(r), this.readBack.get(r) ?? Buffer.byteLength(this.line(r)));
  }

  added(items: readonly SinkRecord[]): void {
    if (this.broken !== null || items.length === 0) return;
    try {
      let text = "";
      let count = 0;
      let bytes = 0;
      for (const r of items) {
        const line = this.line(r);
        this.lines.delete(r);
        const seg = this.segments.at(-1);
        if (this.fd === null || !seg || seg.bytes + bytes >= this.segmentBytes) {
          if (count > 0) this.write(text, count);
          text = "";
          count = 0;
          bytes = 0;
          this.rotate();
        }
        text += line;
        count++;
        bytes += Buffer.byteLength(line);
      }
      if (count > 0) this.write(text, count);
    } catch (err) {
      this.fail(err);
    }
  }

  taken(n: number): void {
    this.inFlight = n;
  }

  done(): void {
    this.head += this.inFlight + this.gap;
    this.inFlight = 0;
    this.gap = 0;
    this.moved();
  }

  dropped(n: number): void {
    if (this.inFlight > 0) this.gap += n;
    else this.head += n;
    this.moved();
  }

  /** Records held on disk: those in flight and those waiting. */
  get held(): number {
    return this.end - this.head - this.gap;
  }

  /** Syncs the files and lets the directory go; what is still held stays for the next start. */
  close(): void {
    try {
      if (this.fd !== null) fs.fsyncSync(this.fd);
      this.writeCursor();
    } catch (err) {
      this.fail(err);
    }
    this.closeFd();
    this.lock.release();
  }

  private write(text: string, count: number): void {
    const buf = Buffer.from(text);
    for (let off = 0; off < buf.length; ) off += fs.writeSync(this.fd!, buf, off);
    const seg = this.segments.at(-1)!;
    seg.lines += count;
    seg.bytes += buf.length;
    this.end += count;
  }

  private rotate(): void {
    this.closeFd();
    const name = `${String(this.end).padStart(16, "0")}.ndjson`;
    this.fd = fs.openSync(path.join(this.where, name), "a", 0o600);
    this.segments.push({ start: this.end, lines: 0, bytes: 0, name });
  }

  /** Lines before head are gone: whole segments of them are removed, and the cursor moves. */
  private moved(): void {
    if (this.broken !== null) return;
    try {
      if (this.head >= this.end) {
        // Nothing held: start afresh rather than keep a file of delivered lines.
        this.closeFd();
        for (const s of this.segments.splice(0)) fs.rmSync(path.join(this.where, s.name), { force: true });
      } else {
        // Gone: lines before head, and lines dropped behind a batch in flight (which may wait on
        // retries for long while the oldest keep being dropped). The segment written to stays.
        const gapFrom = this.head + this.inFlight;
        const gapTo = gapFrom + this.gap;
        const last = this.segments.at(-1);
        for (const seg of this.segments.filter((x) => x !== last)) {
          const end = seg.start + seg.lines;
          if (end <= this.head || (seg.start >= gapFrom && end <= gapTo)) {
            fs.rmSync(path.join(this.where, seg.name), { force: true });
            this.segments.splice(this.segments.indexOf(seg), 1);
          }
        }
      }
      this.writeCursor();
    } catch (err) {
      this.fail(err);
    }
  }

  private writeCursor(): void {
    const tmp = path.join(this.where, `${CURSOR}.tmp`);
    fs.writeFileSync(tmp, `${this.head} ${this.inFlight} ${this.gap}\n`, { mode: 0o600 });
    fs.renameSync(tmp, path.join(this.where, CURSOR));
  }

  /** A spool that cannot be written no longer follows the queue; the sink goes on without it. */
  private fail(err: unknown): void {
    if (this.broken !== null) return;
    this.broken = errorText(err);
    this.closeFd();
    this.onError(`cannot write the spool in ${this.where} (${this.broken}): records are held in memory only until the sink is made again`);
  }

  private closeFd(): void {
    if (this.fd === null) return;
    try {
      fs.closeSync(this.fd);
    } catch {
      // Already closed.
    }
    this.fd = null;
  }

  private load(): { records: SinkRecord[]; torn: number } {
    const names = fs.readdirSync(this.where);
    // Left by a run that died while rewriting: the segments it was made from are still there.
    for (const name of names.filter((n) => n.endsWith(".tmp"))) fs.rmSync(path.join(this.where, name), { force: true });
    const old = names
      .map((name) => ({ name, m: SEGMENT.exec(name) }))
      .filter((x) => x.m)
      .map((x) => ({ name: x.name, start: Number(x.m![1]) }))
      .sort((a, b) => a.start - b.start);
    const [h, k, g] = readCursor(path.join(this.where, CURSOR));
    const records: SinkRecord[] = [];
    let torn = 0;
    let last = h;
    for (const seg of old) {
      const text = fs.readFileSync(path.join(this.where, seg.name), "utf8");
      const parts = text.split("\n");
      // The piece after the last newline is a line cut short, unless it is empty.
      if (parts.at(-1) !== "") torn++;
      parts.pop();
      parts.forEach((line, i) => {
        const n = seg.start + i;
        if (n < h || (n >= h + k && n < h + k + g)) return;
        const r = parseRecord(line);
        if (r) records.push(r);
        else torn++;
      });
      last = Math.max(last, seg.start + parts.length + 1);
    }
    // One fresh segment of what is held, synced and in place before the old ones go.
    this.end = last;
    this.head = last;
    if (records.length > 0) {
      const name = `${String(last).padStart(16, "0")}.ndjson`;
      const tmp = path.join(this.where, `${name}.tmp`);
      const text = records
        .map((r) => {
          const line = `${JSON.stringify(r)}\n`;
          this.readBack.set(r, Buffer.byteLength(line));
          return line;
        })
        .join("");
      const fd = fs.openSync(tmp, "w", 0o600);
      try {
        fs.writeSync(fd, text);
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
      fs.renameSync(tmp, path.join(this.where, name));
      this.segments.push({ start: last, lines: records.length, bytes: Buffer.byteLength(text), name });
      this.end = last + records.length;
    }
    this.writeCursor();
    for (const seg of old) fs.rmSync(path.join(this.where, seg.name), { force: true });
    return { records, torn };
  }
}

function readCursor(file: string): [number, number, number] {
  let text = "";
  try {
    text = fs.readFileSync(file, "utf8");
  } catch {
    return [0, 0, 0];
  }
  const n = text.trim().split(" ").map(Number);
  // An unreadable cursor sends everything again: at least once, never lost.
  if (n.length !== 3 || !n.every((x) => Number.isSafeInteger(x) && x >= 0)) return [0, 0, 0];
  return n as [number, number, number];
}

/** A line as a record, or null when it is not one (the file is not trusted: it may be edited). */
function parseRecord(line: string): SinkRecord | null {
  let r: unknown;
  try {
    r = JSON.parse(line);
  } catch {
    return null;
  }
  if (!r || typeof r !== "object" || Array.isArray(r)) return null;
  const o = r as Record<string, unknown>;
  if (typeof o.time !== "string" || typeof o.kind !== "string" || typeof o.message !== "string") return null;
  return o as unknown as SinkRecord;
}
