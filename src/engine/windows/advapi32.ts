/**
 * advapi32.dll calls for process tokens and account names, bound through koffi. Raw bindings
 * only. TOKEN_USER points into itself, so it is read into native memory (koffi.alloc).
 */
import { koffi } from "../native/koffi-addon.ts";
import type { Handle } from "./kernel32.ts";

export const TOKEN_QUERY = 0x0008;

export interface Advapi32 {
  /** OpenProcessToken; the token handle in `token[0]`. */
  openProcessToken(process: Handle, access: number, token: unknown[]): boolean;
  /** GetTokenInformation into `buffer` (a Buffer or native memory) of `length` bytes. */
  getTokenInformation(token: Handle, infoClass: number, buffer: unknown, length: number, returned: number[]): boolean;
  /**
   * LookupAccountSidW(NULL, sid, name, &cchName, domain, &cchDomain, &use): sizes in WCHARs,
   * in and out.
   */
  lookupAccountSid(sid: unknown, name: Buffer, nameChars: number[], domain: Buffer, domainChars: number[]): boolean;
}

let bound: Advapi32 | null = null;

export function advapi32(): Advapi32 {
  if (bound) return bound;
  const lib = koffi().load("advapi32.dll");
  const openToken = lib.func("int __stdcall OpenProcessToken(void *ProcessHandle, uint32_t DesiredAccess, _Out_ void **TokenHandle)");
  const tokenInfo = lib.func(
    "int __stdcall GetTokenInformation(void *TokenHandle, int TokenInformationClass, void *TokenInformation, uint32_t TokenInformationLength, _Out_ uint32_t *ReturnLength)",
  );
  const lookup = lib.func(
    "int __stdcall LookupAccountSidW(void *lpSystemName, void *Sid, void *Name, _Inout_ uint32_t *cchName, void *ReferencedDomainName, _Inout_ uint32_t *cchReferencedDomainName, _Out_ int *peUse)",
  );
  bound = {
    openProcessToken: (p, access, token) => openToken(p, access, token) !== 0,
    getTokenInformation: (t, cls, buf, len, ret) => tokenInfo(t, cls, buf, len, ret) !== 0,
    lookupAccountSid: (sid, name, nameChars, domain, domainChars) => lookup(null, sid, name, nameChars, domain, domainChars, [0]) !== 0,
  };
  return bound;
}
