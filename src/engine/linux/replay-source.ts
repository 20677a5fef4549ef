/**
 * `--replay FILE`: a recording made by `--record` (JSON lines of raw datagrams) or a raw dump
 * made by iproute2's `ss -D FILE`, told apart by their first bytes. The file is read once, as it
 * may be a FIFO (`--replay <(zcat dump.gz)`). A recording's owner lines go to `owners`.
 */
import fs from "node:fs";
import { UnsupportedError } from "../../errors.ts";
import { ReplayDiagSource, type DiagSource } from "./diag-source.ts";
import { SsDumpDiagSource, looksLikeSsDump } from "./ss-dump-source.ts";
import type { RecordedOwners } from "./recorded-owners.ts";

export function openReplaySource(file: string, owners?: RecordedOwners): DiagSource {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (err) {
    throw new UnsupportedError(`cannot read recording ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  if (looksLikeSsDump(bytes)) return new SsDumpDiagSource(bytes, file);
  return new ReplayDiagSource(file, bytes, owners && ((item, where) => owners.accept(item, where)));
}
