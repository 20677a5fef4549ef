/**
 * kernel32.dll (and one ntdll.dll) calls for processes and the console, bound through koffi. Raw
 * bindings only. Handles are koffi pointer values (null for NULL); output buffers are Buffers the
 * caller sizes, or native memory (koffi.alloc) where the answer points into itself.
 */
import { koffi } from "../native/koffi-addon.ts";

export type Handle = unknown;

export const PROCESS_TERMINATE = 0x0001;
export const PROCESS_QUERY_INFORMATION = 0x0400;
export const PROCESS_VM_READ = 0x0010;
export const PROCESS_QUERY_LIMITED_INFORMATION = 0x1000;
export const SYNCHRONIZE = 0x0010_0000;
export const TH32CS_SNAPPROCESS = 0x2;
export const WAIT_OBJECT_0 = 0;
export const WAIT_TIMEOUT = 0x102;
export const STILL_ACTIVE = 259;
export const STD_OUTPUT_HANDLE = -11;
export const STD_ERROR_HANDLE = -12;
export const ENABLE_VIRTUAL_TERMINAL_PROCESSING = 0x4;
/** NtQueryInformationProcess's ProcessBasicInformation (PROCESS_BASIC_INFORMATION). */
export const PROCESS_BASIC_INFORMATION_CLASS = 0;
/** NtQueryInformationProcess's ProcessCommandLineInformation (Windows 8.1 and later). */
export const PROCESS_COMMAND_LINE_INFORMATION = 60;

export interface Kernel32 {
  openProcess(access: number, pid: number): Handle | null;
  closeHandle(h: Handle): boolean;
  /** QueryFullProcessImageNameW(h, 0, buf, size): `size[0]` in WCHARs, in and out. */
  queryFullProcessImageName(h: Handle, buf: Buffer, size: number[]): boolean;
  /** GetProcessTimes into four FILETIMEs: creation, exit, kernel, user (8 bytes each). */
  getProcessTimes(h: Handle, times: Buffer): boolean;
  terminateProcess(h: Handle, exitCode: number): boolean;
  getExitCodeProcess(h: Handle, code: number[]): boolean;
  waitForSingleObject(h: Handle, ms: number): number;
  /** CreateToolhelp32Snapshot; null for INVALID_HANDLE_VALUE. */
  createToolhelp32Snapshot(flags: number, pid: number): Handle | null;
  process32FirstW(snapshot: Handle, entry: Buffer): boolean;
  process32NextW(snapshot: Handle, entry: Buffer): boolean;
  getCurrentProcess(): Handle;
  getStdHandle(which: number): Handle | null;
  getConsoleMode(h: Handle, mode: number[]): boolean;
  setConsoleMode(h: Handle, mode: number): boolean;
  getLastError(): number;
  /** K32GetProcessMemoryInfo into a PROCESS_MEMORY_COUNTERS of `counters.byteLength` bytes. */
  getProcessMemoryInfo(h: Handle, counters: Buffer): boolean;
  /** ntdll's NtQueryInformationProcess into native memory; returns the NTSTATUS. */
  ntQueryInformationProcess(h: Handle, infoClass: number, buffer: unknown, length: number, returned: number[]): number;
  /** ReadProcessMemory from an address in the other process into `into`. */
  readProcessMemory(h: Handle, address: bigint, into: Buffer): boolean;
}

let bound: Kernel32 | null = null;

/** INVALID_HANDLE_VALUE, (HANDLE)-1, as an address. */
const INVALID_HANDLE = 0xffff_ffff_ffff_ffffn;

export function kernel32(): Kernel32 {
  if (bound) return bound;
  const k = koffi();
  const lib = k.load("kernel32.dll");
  const ntdll = k.load("ntdll.dll");
  const openProcess = lib.func("void * __stdcall OpenProcess(uint32_t dwDesiredAccess, int bInheritHandle, uint32_t dwProcessId)");
  const closeHandle = lib.func("int __stdcall CloseHandle(void *hObject)");
  const queryImage = lib.func(
    "int __stdcall QueryFullProcessImageNameW(void *hProcess, uint32_t dwFlags, void *lpExeName, _Inout_ uint32_t *lpdwSize)",
  );
  const getProcessTimes = lib.func(
    "int __stdcall GetProcessTimes(void *hProcess, void *lpCreationTime, void *lpExitTime, void *lpKernelTime, void *lpUserTime)",
  );
  const terminateProcess = lib.func("int __stdcall TerminateProcess(void *hProcess, uint32_t uExitCode)");
  const getExitCodeProcess = lib.func("int __stdcall GetExitCodeProcess(void *hProcess, _Out_ uint32_t *lpExitCode)");
  const wait = lib.func("uint32_t __stdcall WaitForSingleObject(void *hHandle, uint32_t dwMilliseconds)");
  const snapshot = lib.func("void * __stdcall CreateToolhelp32Snapshot(uint32_t dwFlags, uint32_t th32ProcessID)");
  const first = lib.func("int __stdcall Process32FirstW(void *hSnapshot, void *lppe)");
  const next = lib.func("int __stdcall Process32NextW(void *hSnapshot, void *lppe)");
  const current = lib.func("void * __stdcall GetCurrentProcess()");
  const stdHandle = lib.func("void * __stdcall GetStdHandle(int32_t nStdHandle)");
  const getConsoleMode = lib.func("int __stdcall GetConsoleMode(void *hConsoleHandle, _Out_ uint32_t *lpMode)");
  const setConsoleMode = lib.func("int __stdcall SetConsoleMode(void *hConsoleHandle, uint32_t dwMode)");
  const getLastError = lib.func("uint32_t __stdcall GetLastError()");
  const memoryInfo = lib.func("int __stdcall K32GetProcessMemoryInfo(void *Process, void *ppsmemCounters, uint32_t cb)");
  const ntQuery = ntdll.func(
    "int32_t __stdcall NtQueryInformationProcess(void *ProcessHandle, int ProcessInformationClass, void *ProcessInformation, uint32_t ProcessInformationLength, _Out_ uint32_t *ReturnLength)",
  );
  // The address is declared as an integer: on x64 a pointer and a uint64_t travel the same way.
  const readMemory = lib.func(
    "int __stdcall ReadProcessMemory(void *hProcess, uint64_t lpBaseAddress, void *lpBuffer, size_t nSize, _Out_ size_t *lpNumberOfBytesRead)",
  );
  const valid = (h: unknown): Handle | null => (h === null || k.address(h) === INVALID_HANDLE ? null : h);
  bound = {
    openProcess: (access, pid) => openProcess(access, 0, pid) ?? null,
    closeHandle: (h) => closeHandle(h) !== 0,
    queryFullProcessImageName: (h, buf, size) => queryImage(h, 0, buf, size) !== 0,
    getProcessTimes: (h, t) => getProcessTimes(h, t.subarray(0, 8), t.subarray(8, 16), t.subarray(16, 24), t.subarray(24, 32)) !== 0,
    terminateProcess: (h, code) => terminateProcess(h, code) !== 0,
    getExitCodeProcess: (h, code) => getExitCodeProcess(h, code) !== 0,
    waitForSingleObject: (h, ms) => wait(h, ms) as number,
    createToolhelp32Snapshot: (flags, pid) => valid(snapshot(flags, pid)),
    process32FirstW: (s, e) => first(s, e) !== 0,
    process32NextW: (s, e) => next(s, e) !== 0,
    getCurrentProcess: () => current(),
    getStdHandle: (which) => valid(stdHandle(which)),
    getConsoleMode: (h, mode) => getConsoleMode(h, mode) !== 0,
    setConsoleMode: (h, mode) => setConsoleMode(h, mode) !== 0,
    getLastError: () => getLastError() as number,
    getProcessMemoryInfo: (h, counters) => memoryInfo(h, counters, counters.byteLength) !== 0,
    ntQueryInformationProcess: (h, cls, buf, len, ret) => ntQuery(h, cls, buf, len, ret) as number,
    readProcessMemory: (h, address, into) => {
      const read = [0];
      return readMemory(h, address, into, into.byteLength, read) !== 0 && read[0] === into.byteLength;
    },
  };
  return bound;
}
