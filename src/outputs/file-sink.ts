/**
 * Records appended to a file as NDJSON, synced to disk (fsync) after each batch, and rotated by
 * size: FILE -> FILE.1 -> FILE.2 ... up to FILE.<keep>, the oldest removed. Rotation happens only
 * between lines, after the lines before it are synced, so no line is ever split or lost across
 * files. A file renamed or removed by someone else (logrotate) is noticed and a new one started.
 * Writes run in the background; a failing disk makes batches wait and retry, in a queue bounded
 * in records and in bytes.
 */
import fs from "node:fs";
import fsp from "node:fs/promises";
import path from "node:path";
import type { SinkProblemReporter } from "./sink.ts";
import type { SinkRecord } from "./sink-record.ts";
import { ndjsonLine } from "./record-text.ts";
import { DEFAULT_RETRY, type DeliveryProgress, type RetryPolicy } from "./delivery-queue.ts";
import { QueuedSink } from "./queued-sink.ts";

export interface FileSinkOptions {
  path: string;
  /** Rotate before a line would take the file past this size; 0: never rotate (default 10 MiB). */
  maxBytes?: number;
  /** Rotated files kept, at least 1 (default 5). */
  keep?: number;
  /** Records that may wait while the disk is failing (default 100,000). */
  queueSize?: number;
  /** Bytes the waiting records may hold, the batch being written included (default 16 MiB). */
  queueBytes?: number;
  retry?: Partial<RetryPolicy>;
  report?: SinkProblemReporter;
}

export const FILE_SINK_DEFAULTS = { maxBytes: 10 * 1024 * 1024, keep: 5, queueSize: 100_000, queueBytes: 16 << 20 } as const;

interface OpenFile {
  handle: fsp.FileHandle;
  size: number;
  ino: number;
  dev: number;
}

export class FileSink extends QueuedSink {
  readonly path: string;
  private readonly maxBytes: number;
  private readonly keep: number;
  private file: OpenFile | null = null;
  /** Files rotated so far. */
  rotations = 0;

  constructor(o: FileSinkOptions) {
    const resolved = path.resolve(o.path);
    super({
      name: `file:${resolved}`,
      report: o.report,
      queueSize: o.queueSize ?? FILE_SINK_DEFAULTS.queueSize,
      queueBytes: o.queueBytes ?? FILE_SINK_DEFAULTS.queueBytes,
      batchSize: 2000,
      retry: { ...DEFAULT_RETRY, initialMs: 200, maxMs: 10_000, ...o.retry },
    });
    this.path = resolved;
    this.maxBytes = Math.max(0, o.maxBytes ?? FILE_SINK_DEFAULTS.maxBytes);
    this.keep = Math.max(1, Math.floor(o.keep ?? FILE_SINK_DEFAULTS.keep));
  }

  protected override release(): Promise<void> {
    return this.closeFile();
  }

  private async closeFile(): Promise<void> {
    const f = this.file;
    this.file = null;
    await f?.handle.close().catch(() => {});
  }

  /** Appends the lines not yet on disk; progress.done counts lines written and synced. */
  protected override async deliver(batch: SinkRecord[], progress: DeliveryProgress): Promise<void> {
    try {
      let file = await this.current();
      let chunk: Buffer[] = [];
      let chunkBytes = 0;
      let chunkLines = 0;
      for (let i = progress.done; i < batch.length; i++) {
        const line = Buffer.from(ndjsonLine(batch[i]!));
        if (this.maxBytes > 0 && file.size + chunkBytes > 0 && file.size + chunkBytes + line.length > this.maxBytes) {
          if (chunkLines > 0) {
            await this.writeSynced(file, chunk, chunkBytes);
            progress.done += chunkLines;
            chunk = [];
            chunkBytes = 0;
            chunkLines = 0;
          }
          if (file.size > 0) file = await this.rotate();
        }
        chunk.push(line);
        chunkBytes += line.length;
        chunkLines++;
      }
      if (chunkLines > 0) await this.writeSynced(file, chunk, chunkBytes);
      progress.done = batch.length;
    } catch (err) {
      // Start again from a fresh descriptor: the old one may be what failed.
      await this.closeFile();
      throw err;
    }
  }

  private async writeSynced(file: OpenFile, chunk: Buffer[], bytes: number): Promise<void> {
    let data = chunk.length === 1 ? chunk[0]! : Buffer.concat(chunk, bytes);
    const start = file.size;
    try {
      while (data.length > 0) {
        const { bytesWritten } = await file.handle.write(data);
        file.size += bytesWritten;
        data = data.subarray(bytesWritten);
      }
      await file.handle.sync();
    } catch (err) {
      // A full disk takes part of a chunk and then refuses the rest: cut the part off again, so
      // that the retry (which writes the whole chunk) leaves no broken line behind.
      if (file.size > start) {
        await file.handle.truncate(start).catch(() => {});
        file.size = start;
      }
      throw err;
    }
  }

  /** The open file, reopened when the path no longer names it (moved away by logrotate). */
  private async current(): Promise<OpenFile> {
    if (this.file) {
      const st = await fsp.stat(this.path).catch(() => null);
      if (st && st.ino === this.file.ino && st.dev === this.file.dev) return this.file;
      await this.closeFile();
    }
    await fsp.mkdir(path.dirname(this.path), { recursive: true, mode: 0o750 });
    const handle = await fsp.open(this.path, fs.constants.O_WRONLY | fs.constants.O_APPEND | fs.constants.O_CREAT, 0o640);
    const st = await handle.stat();
    this.file = { handle, size: st.size, ino: st.ino, dev: st.dev };
    return this.file;
  }

  /** FILE.(keep-1) -> FILE.keep ... FILE -> FILE.1, then a new, empty FILE. */
  private async rotate(): Promise<OpenFile> {
    await this.closeFile();
    for (let i = this.keep - 1; i >= 1; i--) await renameIfThere(`${this.path}.${i}`, `${this.path}.${i + 1}`);
    await fsp.rename(this.path, `${this.path}.1`);
    this.rotations++;
    return this.current();
  }
}

async function renameIfThere(from: string, to: string): Promise<void> {
  try {
    await fsp.rename(from, to);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
}
