/**
 * version.dll calls for an image's version resource (what TCPView shows as description, company
 * and version), bound through koffi. Raw bindings only. VerQueryValueW answers with pointers into
 * the block, so the block lives in native memory (koffi.alloc).
 */
import { koffi } from "../native/koffi-addon.ts";

export interface VersionDll {
  getFileVersionInfoSize(path: string): number;
  getFileVersionInfo(path: string, length: number, block: unknown): boolean;
  /** VerQueryValueW; the value's pointer in `value[0]`, its length in `length[0]`. */
  verQueryValue(block: unknown, subBlock: string, value: unknown[], length: number[]): boolean;
}

let bound: VersionDll | null = null;

export function versionDll(): VersionDll {
  if (bound) return bound;
  const lib = koffi().load("version.dll");
  const size = lib.func("uint32_t __stdcall GetFileVersionInfoSizeW(const char16_t *lptstrFilename, _Out_ uint32_t *lpdwHandle)");
  const info = lib.func(
    "int __stdcall GetFileVersionInfoW(const char16_t *lptstrFilename, uint32_t dwHandle, uint32_t dwLen, void *lpData)",
  );
  const query = lib.func(
    "int __stdcall VerQueryValueW(void *pBlock, const char16_t *lpSubBlock, _Out_ void **lplpBuffer, _Out_ uint32_t *puLen)",
  );
  bound = {
    getFileVersionInfoSize: (path) => size(path, [0]) as number,
    getFileVersionInfo: (path, len, block) => info(path, 0, len, block) !== 0,
    verQueryValue: (block, sub, value, length) => query(block, sub, value, length) !== 0,
  };
  return bound;
}
