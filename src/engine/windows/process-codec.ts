/**
 * Pure decoders for the process structures the Windows engine reads: PROCESSENTRY32W
 * (tlhelp32.h), the UNICODE_STRING NtQueryInformationProcess answers ProcessCommandLineInformation
 * with (winternl.h), TOKEN_USER and TOKEN_ELEVATION (winnt.h), and VerQueryValueW's translation
 * array (winver.h). Layouts are Microsoft's for x64; offsets are named once here.
 */
import { DecodeError } from "../../errors.ts";
import { fileTimeToMs } from "./ip-table-codec.ts";

// PROCESSENTRY32W: DWORD dwSize, cntUsage, th32ProcessID; ULONG_PTR th32DefaultHeapID (8-aligned);
// DWORD th32ModuleID, cntThreads, th32ParentProcessID; LONG pcPriClassBase; DWORD dwFlags;
// WCHAR szExeFile[MAX_PATH]. 44 + 520 = 564, rounded up to the 8-byte alignment: 568.
export const PROCESSENTRY32W_LEN = 568;
const PE_SIZE = 0;
const PE_PROCESS_ID = 8;
const PE_THREADS = 28;
const PE_PARENT_PROCESS_ID = 32;
const PE_EXE_FILE = 44;
const MAX_PATH = 260;

export interface ProcessEntry {
  pid: number;
  ppid: number;
  threads: number;
  /** The executable's file name, e.g. `svchost.exe` (`System`, `[System Process]` for 4 and 0). */
  exeFile: string;
}

/** A PROCESSENTRY32W ready for Process32FirstW: zeroed, with dwSize set. */
export function newProcessEntry(): Buffer {
  const buf = Buffer.alloc(PROCESSENTRY32W_LEN);
  buf.writeUInt32LE(PROCESSENTRY32W_LEN, PE_SIZE);
  return buf;
}

export function decodeProcessEntry(buf: Uint8Array): ProcessEntry {
  if (buf.byteLength < PROCESSENTRY32W_LEN) {
    throw new DecodeError(`PROCESSENTRY32W: ${buf.byteLength} bytes, needs ${PROCESSENTRY32W_LEN}`);
  }
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  return {
    pid: b.readUInt32LE(PE_PROCESS_ID),
    ppid: b.readUInt32LE(PE_PARENT_PROCESS_ID),
    threads: b.readUInt32LE(PE_THREADS),
    exeFile: utf16z(b, PE_EXE_FILE, MAX_PATH * 2),
  };
}

/** A NUL-terminated UTF-16LE string of at most `maxBytes` bytes starting at `offset`. */
export function utf16z(buf: Uint8Array, offset: number, maxBytes: number): string {
  const end = Math.min(buf.byteLength, offset + maxBytes);
  let i = offset;
  while (i + 1 < end && (buf[i] !== 0 || buf[i + 1] !== 0)) i += 2;
  return Buffer.from(buf.buffer, buf.byteOffset + offset, i - offset).toString("utf16le");
}

// UNICODE_STRING: USHORT Length (bytes, no terminator); USHORT MaximumLength; PWSTR Buffer at 8.
export const UNICODE_STRING_LEN = 16;
const US_LENGTH = 0;
const US_BUFFER = 8;

/**
 * The text of a UNICODE_STRING whose characters lie in the same block (as
 * ProcessCommandLineInformation returns it): `base` is the block's address, so the Buffer pointer
 * gives the offset of the characters.
 */
export function decodeUnicodeStringInBlock(block: Uint8Array, base: bigint): string {
  if (block.byteLength < UNICODE_STRING_LEN) {
    throw new DecodeError(`UNICODE_STRING: ${block.byteLength} bytes, needs ${UNICODE_STRING_LEN}`);
  }
  const view = new DataView(block.buffer, block.byteOffset, block.byteLength);
  const length = view.getUint16(US_LENGTH, true);
  if (length === 0) return "";
  const pointer = view.getBigUint64(US_BUFFER, true);
  const offset = Number(pointer - base);
  if (!(offset >= UNICODE_STRING_LEN && offset + length <= block.byteLength)) {
    throw new DecodeError(`UNICODE_STRING: ${length} bytes at offset ${offset} lie outside the ${block.byteLength}-byte block`);
  }
  return Buffer.from(block.buffer, block.byteOffset + offset, length).toString("utf16le");
}

// Reading another process's command line from its PEB, where ProcessCommandLineInformation is
// missing (before Windows 8.1, and in wine 8): PROCESS_BASIC_INFORMATION (winternl.h) gives the
// PEB's address; in the x64 PEB, ProcessParameters is at 0x20; in RTL_USER_PROCESS_PARAMETERS the
// CommandLine UNICODE_STRING is at 0x70.
export const PROCESS_BASIC_INFORMATION_LEN = 48;
export const PBI_PEB_BASE_ADDRESS = 8;
export const PEB_PROCESS_PARAMETERS = 0x20;
export const PARAMETERS_COMMAND_LINE = 0x70;

/** A UNICODE_STRING's length in bytes and the address of its characters. */
export function decodeUnicodeStringHeader(buf: Uint8Array): { length: number; buffer: bigint } {
  if (buf.byteLength < UNICODE_STRING_LEN) {
    throw new DecodeError(`UNICODE_STRING: ${buf.byteLength} bytes, needs ${UNICODE_STRING_LEN}`);
  }
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  return { length: view.getUint16(US_LENGTH, true), buffer: view.getBigUint64(US_BUFFER, true) };
}

/** TOKEN_ELEVATION: one DWORD, TokenIsElevated. TOKEN_INFORMATION_CLASS TokenElevation = 20. */
export const TOKEN_ELEVATION_CLASS = 20;
export const TOKEN_ELEVATION_LEN = 4;
/** TOKEN_USER: SID_AND_ATTRIBUTES { PSID Sid; DWORD Attributes } (16 bytes), the SID after it. */
export const TOKEN_USER_CLASS = 1;
export const TOKEN_USER_SID = 0;

/**
 * VerQueryValueW("\\VarFileInfo\\Translation"): pairs of WORDs (language, code page). Returns
 * the `\StringFileInfo\` block names to try, most likely first: each listed pair, then US English
 * with Unicode and with Western European code pages, which most images use.
 */
export function stringFileInfoKeys(translation: Uint8Array | null): string[] {
  const keys: string[] = [];
  if (translation) {
    const view = new DataView(translation.buffer, translation.byteOffset, translation.byteLength);
    for (let o = 0; o + 4 <= translation.byteLength; o += 4) {
      const language = view.getUint16(o, true);
      const codePage = view.getUint16(o + 2, true);
      keys.push(hex4(language) + hex4(codePage));
    }
  }
  for (const fallback of ["040904b0", "040904e4", "04090000"]) if (!keys.includes(fallback)) keys.push(fallback);
  return keys;
}

function hex4(n: number): string {
  return n.toString(16).padStart(4, "0");
}

/** A FILETIME (100-ns intervals since 1601) as ISO-8601; null for zero. */
export function fileTimeToIso(buf: Uint8Array, offset: number): string | null {
  const ms = fileTimeToMs(buf, offset);
  return ms === null ? null : new Date(ms).toISOString();
}

// TCPIP_OWNER_MODULE_BASIC_INFO (iprtrmib.h): PWCHAR pModuleName; PWCHAR pModulePath; the
// strings follow in the same buffer. GetOwnerModuleFrom*Entry is given this many bytes.
export const TCPIP_OWNER_MODULE_INFO_BASIC_LEN = 4096;
const OMBI_NAME = 0;
const OMBI_PATH = 8;

/** A NUL-terminated UTF-16 string a pointer at `field` names inside the block at `base`. */
function stringPointedTo(block: Uint8Array, base: bigint, field: number, what: string): string | null {
  const view = new DataView(block.buffer, block.byteOffset, block.byteLength);
  const pointer = view.getBigUint64(field, true);
  if (pointer === 0n) return null;
  const offset = Number(pointer - base);
  if (!(offset >= 0 && offset < block.byteLength)) {
    throw new DecodeError(`${what} points ${offset} bytes into a ${block.byteLength}-byte block`);
  }
  return utf16z(block, offset, block.byteLength - offset);
}

/** Decodes TCPIP_OWNER_MODULE_BASIC_INFO whose strings lie in the same block at `base`. */
export function decodeOwnerModuleBasicInfo(block: Uint8Array, base: bigint): { name: string | null; path: string | null } {
  if (block.byteLength < 16) throw new DecodeError(`TCPIP_OWNER_MODULE_BASIC_INFO: ${block.byteLength} bytes, needs 16`);
  return {
    name: stringPointedTo(block, base, OMBI_NAME, "pModuleName"),
    path: stringPointedTo(block, base, OMBI_PATH, "pModulePath"),
  };
}
