/**
 * Where the Windows engine's raw tables come from: iphlpapi (GetExtendedTcpTable and
 * GetExtendedUdpTable), or a recording of earlier tables, so that a listing seen on a user's box
 * can be decoded again anywhere (Linux included) from the file it recorded.
 *
 * A recording is NDJSON, one table per line: {"layout":"MIB_TCPROW_OWNER_MODULE","bytes":"<base64>"}.
 */
import fs from "node:fs";
import { DecodeError, SockwardenError, SystemCallError } from "../../errors.ts";
import type { Family, Protocol } from "../../model/endpoint.ts";
import {
  TCP6ROW_OWNER_MODULE,
  TCP6ROW_OWNER_PID,
  TCPROW_OWNER_MODULE,
  TCPROW_OWNER_PID,
  UDP6ROW_OWNER_MODULE,
  UDP6ROW_OWNER_PID,
  UDPROW_OWNER_MODULE,
  UDPROW_OWNER_PID,
  rowLayout,
  tableRequest,
  type RowLayout,
} from "./ip-table-codec.ts";
import { ERROR_INSUFFICIENT_BUFFER, ERROR_INVALID_PARAMETER, ERROR_NOT_SUPPORTED, NO_ERROR, iphlpapi } from "./iphlpapi.ts";
import { win32ErrorName } from "./win32-errors.ts";

/** One table as the call filled it. */
export interface RawTable {
  layout: RowLayout;
  bytes: Uint8Array;
}

export interface TableSource {
  /** The table for one protocol and family: the owner-module class where available. */
  read(protocol: Protocol, family: Family): RawTable;
  close(): void;
}

export const ALL_LAYOUTS: readonly RowLayout[] = [
  TCPROW_OWNER_MODULE,
  TCPROW_OWNER_PID,
  TCP6ROW_OWNER_MODULE,
  TCP6ROW_OWNER_PID,
  UDPROW_OWNER_MODULE,
  UDPROW_OWNER_PID,
  UDP6ROW_OWNER_MODULE,
  UDP6ROW_OWNER_PID,
];

/** Tables grow between the call that sizes them and the one that fills them: retry a few times. */
const ATTEMPTS = 5;
const INITIAL_BUFFER_BYTES = 1 << 20;
/** Headroom for rows that appear between the two calls. */
const SLACK_ROWS = 64;

export class LiveTableSource implements TableSource {
  /**
   * Reused between snapshots; grown when a table outgrows it. It starts large enough for a few
   * thousand sockets so that a listing usually takes one call per table: each call builds the
   * whole table, which some implementations (wine's) make slow by looking up every owner.
   */
  private buffer = new Uint8Array(INITIAL_BUFFER_BYTES);
  /** Per protocol/family: whether the owner-module class was refused and owner-PID is used. */
  private readonly pidOnly = new Set<string>();
  readonly notes: string[] = [];

  constructor(private readonly recorder?: (table: RawTable) => void) {}

  read(protocol: Protocol, family: Family): RawTable {
    const key = `${protocol}${family}`;
    if (!this.pidOnly.has(key)) {
      const layout = rowLayout(protocol, family, true);
      const r = this.fetch(layout);
      if (r.ok) return this.recorded({ layout, bytes: r.bytes });
      if (r.error !== ERROR_NOT_SUPPORTED && r.error !== ERROR_INVALID_PARAMETER) throw this.failure(layout, r.error);
      // Older systems and some emulations lack the owner-module classes: owner-PID tables carry
      // the same sockets without creation times.
      this.pidOnly.add(key);
    }
    const layout = rowLayout(protocol, family, false);
    const r = this.fetch(layout);
    if (!r.ok) throw this.failure(layout, r.error);
    return this.recorded({ layout, bytes: r.bytes });
  }

  private recorded(table: RawTable): RawTable {
    this.recorder?.(table);
    return table;
  }

  private failure(layout: RowLayout, error: number): SystemCallError {
    const call = layout.protocol === "tcp" ? "GetExtendedTcpTable" : "GetExtendedUdpTable";
    return new SystemCallError(`${call}(${layout.name.replace("ROW", "TABLE")})`, error, win32ErrorName(error));
  }

  private fetch(layout: RowLayout): { ok: true; bytes: Uint8Array } | { ok: false; error: number } {
    const api = iphlpapi();
    const { af, tableClass } = tableRequest(layout);
    const call = layout.protocol === "tcp" ? api.getExtendedTcpTable : api.getExtendedUdpTable;
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      const size = [this.buffer.byteLength];
      const rc = call(this.buffer, size, af, tableClass);
      if (rc === NO_ERROR) {
        // The size is not always updated on success; the table's own count bounds the decoding.
        const used = Math.min(size[0] || this.buffer.byteLength, this.buffer.byteLength);
        return { ok: true, bytes: this.buffer.slice(0, used) };
      }
      if (rc !== ERROR_INSUFFICIENT_BUFFER) return { ok: false, error: rc };
      const needed = (size[0] ?? 0) + SLACK_ROWS * layout.size;
      this.buffer = new Uint8Array(Math.max(needed, this.buffer.byteLength * 2));
    }
    return { ok: false, error: ERROR_INSUFFICIENT_BUFFER };
  }

  close(): void {}
}

/** Appends every table read to an NDJSON recording. */
export function tableRecorder(file: string): { record: (table: RawTable) => void; finish: () => void } {
  let fd: number;
  try {
    fd = fs.openSync(file, "w");
  } catch (err) {
    throw new SockwardenError(`cannot write the recording ${file}: ${(err as Error).message}`);
  }
  return {
    record: (table) => {
      fs.writeSync(fd, JSON.stringify({ layout: table.layout.name, bytes: Buffer.from(table.bytes).toString("base64") }) + "\n");
    },
    finish: () => fs.closeSync(fd),
  };
}

/** Reads tables from a recording: for each protocol and family, the first table recorded. */
export class ReplayTableSource implements TableSource {
  private readonly tables = new Map<string, RawTable>();

  constructor(file: string) {
    let text: string;
    try {
      text = fs.readFileSync(file, "utf8");
    } catch (err) {
      throw new SockwardenError(`cannot read the recording ${file}: ${(err as Error).message}`);
    }
    text.split("\n").forEach((line, i) => {
      if (line.trim() === "") return;
      let parsed: { layout?: unknown; bytes?: unknown };
      try {
        parsed = JSON.parse(line);
      } catch {
        throw new DecodeError(`${file}:${i + 1}: not JSON`);
      }
      // A line of `null` parses too: it has no fields.
      const layout = ALL_LAYOUTS.find((l) => l.name === parsed?.layout);
      if (!layout || typeof parsed?.bytes !== "string") {
        throw new DecodeError(`${file}:${i + 1}: expected {"layout": one of ${ALL_LAYOUTS.map((l) => l.name).join(", ")}, "bytes": base64}`);
      }
      const key = `${layout.protocol}${layout.family}`;
      if (!this.tables.has(key)) this.tables.set(key, { layout, bytes: new Uint8Array(Buffer.from(parsed.bytes, "base64")) });
    });
  }

  read(protocol: Protocol, family: Family): RawTable {
    const table = this.tables.get(`${protocol}${family}`);
    // A recording made with -t or -4 lacks the other tables: they are empty, not an error.
    return table ?? { layout: rowLayout(protocol, family, false), bytes: new Uint8Array(4) };
  }

  close(): void {}
}
