/**
 * Names for the Win32 error codes the Windows engine meets (winerror.h), so messages say
 * "ERROR_ACCESS_DENIED" rather than a bare number.
 */
const NAMES = new Map<number, string>([
  [0, "NO_ERROR"],
  [2, "ERROR_FILE_NOT_FOUND"],
  [5, "ERROR_ACCESS_DENIED"],
  [6, "ERROR_INVALID_HANDLE"],
  [8, "ERROR_NOT_ENOUGH_MEMORY"],
  [50, "ERROR_NOT_SUPPORTED"],
  [87, "ERROR_INVALID_PARAMETER"],
  [122, "ERROR_INSUFFICIENT_BUFFER"],
  [317, "ERROR_MR_MID_NOT_FOUND"],
  [1168, "ERROR_NOT_FOUND"],
]);

export function win32ErrorName(code: number): string {
  return NAMES.get(code) ?? `Win32 error ${code}`;
}
