/**
 * Loading the set-state program: statistics first and the verifier's full log on a refusal, and
 * the fallbacks from reading counters and the namespace with bpf_probe_read_kernel, to
 * bpf_probe_read, to no reads at all.
 */
import { SystemCallError } from "../../../errors.ts";
import { EACCES, EAGAIN, EPERM, errnoName } from "../errno.ts";
import { BPF_LOG_LEVEL1, BPF_LOG_STATS, BPF_PROG_TYPE_TRACEPOINT, progLoad } from "./bpf-syscalls.ts";
import type { SetStateTracepoint } from "./tracepoint-format.ts";
import { buildSetStateProgram, type BuiltProgram, type CounterReads, type NetnsReads, type SetStateMaps } from "./set-state-program.ts";
import { HELPER } from "./assembler.ts";
import { Btf } from "./btf.ts";
import { tcpCounterFields } from "./tcp-counter-fields.ts";
import { netnsFields } from "./netns-fields.ts";
import { SensorUnavailableError, refusal } from "./sensor-refusal.ts";

export interface ProgramReadOptions {
  /** Read each socket's counters at every change where the kernel's BTF says where they are. Default true. */
  counters?: boolean;
  /** Where the kernel's BTF is read from; /sys/kernel/btf/vmlinux unless a test passes another. */
  btfPath?: string;
}

function verifierProcessed(log: string): number | null {
  const m = /processed (\d+) insns/.exec(log);
  return m ? Number(m[1]) : null;
}

/** The last lines of a verifier log: where it gave up and why. */
function logTail(log: string, lines = 25): string {
  const all = log.trimEnd().split("\n");
  return (all.length > lines ? ["…", ...all.slice(-lines)] : all).join("\n");
}

/**
 * Loads a tracepoint program; a refusal becomes SensorUnavailableError, with the verifier's log
 * when the verifier refused it. The first load asks only for statistics (the processed count);
 * a refusal is loaded again with the full log, which is what says why.
 */
export function loadTracepointProgram(instructions: Buffer): { fd: number; verifierProcessed: number | null } {
  const load = (logLevel: number, logSize: number) =>
    progLoad({ type: BPF_PROG_TYPE_TRACEPOINT, instructions, license: "GPL", name: "sw_set_state", logLevel, logSize });
  let loaded = load(BPF_LOG_STATS, 64 * 1024);
  // Interrupted is not refused: the full log would only take longer to be interrupted again.
  if (loaded.fd < 0 && loaded.errno !== EPERM && loaded.errno !== EAGAIN) loaded = load(BPF_LOG_LEVEL1, 16 * 1024 * 1024);
  if (loaded.fd >= 0) return { fd: loaded.fd, verifierProcessed: verifierProcessed(loaded.log) };
  const error = new SystemCallError("bpf(BPF_PROG_LOAD)", loaded.errno, errnoName(loaded.errno));
  if (loaded.errno === EAGAIN) {
    throw new SensorUnavailableError("interrupted", "the kernel's verifier was interrupted by signals at every try (EAGAIN): try again", null, { cause: error });
  }
  // The verifier refuses with EACCES or EINVAL and a log; EPERM, or EACCES with nothing said, is privilege.
  if (loaded.errno === EPERM || (loaded.errno === EACCES && loaded.log.trim() === "")) throw refusal("loading the program", error);
  throw new SensorUnavailableError(
    "verifier",
    `the kernel refused the program (${errnoName(loaded.errno)}); the verifier said:\n${logTail(loaded.log) || "(nothing)"}`,
    loaded.log,
    { cause: error },
  );
}

const NO_COUNTERS = "the sensor's state changes carry no byte or packet counts (snapshots still do)";
const NO_NETNS = "the sensor's state changes carry no network namespace: sockets are placed by their processes, and sockets of two namespaces with the same addresses can be mistaken for each other";

/** The running kernel's BTF, or null with the reason told in `notes` for everything read through it. */
function kernelBtf(notes: string[], options: ProgramReadOptions): Btf | null | undefined {
  try {
    return Btf.readKernel(options.btfPath);
  } catch (error) {
    const why = `the kernel's BTF cannot be read (${(error as Error).message})`;
    if (options.counters ?? true) notes.push(`${NO_COUNTERS}: ${why}`);
    notes.push(`${NO_NETNS}: ${why}`);
    return undefined;
  }
}

/** Where the running kernel keeps a socket's namespace inode, or null with the reason told in `notes`. */
function netnsPlaces(notes: string[], btf: Btf | null): Omit<NetnsReads, "helper"> | null {
  const fields = netnsFields(btf);
  if (!fields.ok) {
    notes.push(`${NO_NETNS}: ${fields.reason}`);
    return null;
  }
  return { netPointer: fields.netPointer, inum: fields.inum, inumSize: fields.inumSize };
}

/** Where the running kernel keeps a socket's counters, or null with the reason told in `notes`. */
function counterPlaces(notes: string[], btf: Btf | null): Omit<CounterReads, "helper"> | null {
  const fields = tcpCounterFields(btf);
  if (!fields.ok) {
    notes.push(`${NO_COUNTERS}: ${fields.reason}`);
    return null;
  }
  return { bytesSent: fields.bytesSent, bytesReceived: fields.bytesReceived, segsOut: fields.segsOut, segsIn: fields.segsIn };
}

/**
 * Builds and loads the program, reading counters and the namespace where it can: with
 * bpf_probe_read_kernel (5.5+), else bpf_probe_read, else (the verifier refused both) without
 * reads, which is said once. Any refusal of the program without reads is the sensor's end.
 */
export function loadWithCounters(
  tracepoint: SetStateTracepoint,
  maps: SetStateMaps,
  options: ProgramReadOptions,
  notes: string[],
): { built: BuiltProgram; loaded: { fd: number; verifierProcessed: number | null } } {
  const btf = kernelBtf(notes, options);
  const places = btf !== undefined && (options.counters ?? true) ? counterPlaces(notes, btf) : null;
  const netns = btf !== undefined ? netnsPlaces(notes, btf) : null;
  const helpers = places || netns ? [HELPER.probeReadKernel, HELPER.probeRead] : [];
  let refusal: SensorUnavailableError | null = null;
  for (const helper of helpers) {
    const built = buildSetStateProgram(tracepoint.layout, maps, {
      counters: places ? { ...places, helper } : null,
      netns: netns ? { ...netns, helper } : null,
    });
    try {
      return { built, loaded: loadTracepointProgram(built.bytes) };
    } catch (error) {
      if (!(error instanceof SensorUnavailableError) || (error.reason !== "verifier" && error.reason !== "interrupted")) throw error;
      // Interrupted at every try (a CPU profiler's timer outruns a verification of over a
      // millisecond): the other helper would fare no better; the program without reads is short.
      if (error.reason === "interrupted") {
        refusal = error;
        break;
      }
      refusal ??= error;
    }
  }
  if (refusal?.reason === "interrupted") {
    const why = "the kernel's verifier was interrupted by signals at every try of the program that reads them (EAGAIN; a CPU profiler's timer does this)";
    if (places) notes.push(`${NO_COUNTERS}: ${why}`);
    if (netns) notes.push(`${NO_NETNS}: ${why}`);
  } else if (refusal) {
    // The verifier's reason is its last line before the statistics it always ends with.
    const last = (refusal.verifierLog ?? "").split("\n").filter((line) => line.trim() !== "" && !/^(processed \d+ insns|verification time)/.test(line)).at(-1) ?? "";
    if (places) notes.push(`${NO_COUNTERS}: the kernel refused reading them from the socket${last ? ` (${last})` : ""}`);
    if (netns) notes.push(`${NO_NETNS}: the kernel refused reading it from the socket${last ? ` (${last})` : ""}`);
  }
  const built = buildSetStateProgram(tracepoint.layout, maps);
  return { built, loaded: loadTracepointProgram(built.bytes) };
}
