/**
 * A whole sock_diag dump collected into a list, for comparing a source's sockets with another
 * view of them. The daemon streams records instead: a source reuses each record after its call.
 */
import type { DiagSource } from "../../src/engine/linux/diag-source.ts";
import type { DiagRecord } from "../../src/engine/linux/sock-diag-codec.ts";

export function dumpAll(source: DiagSource, family: number, protocol: number): DiagRecord[] {
  const records: DiagRecord[] = [];
  source.dump(family, protocol, (r) => records.push({ ...r }));
  return records;
}
