/**
 * Colour on the Windows console: the escape sequences sockwarden writes (SGR colours, the live
 * view's cursor movement) are interpreted only once the console's output mode has
 * ENABLE_VIRTUAL_TERMINAL_PROCESSING (Windows 10 1511 and later). A console that refuses it (an
 * older Windows) is told so, and the caller writes without colour.
 */
import { ENABLE_VIRTUAL_TERMINAL_PROCESSING, STD_ERROR_HANDLE, STD_OUTPUT_HANDLE, kernel32 } from "./kernel32.ts";

const answers = new Map<number, boolean>();

/**
 * Turns on VT processing for stdout (fd 1) or stderr (fd 2); true when the console now interprets
 * escape sequences. Output that is not a console (a pipe, a file) has no mode: false.
 */
export function enableVirtualTerminal(fd: 1 | 2): boolean {
  const known = answers.get(fd);
  if (known !== undefined) return known;
  let ok = false;
  try {
    const k = kernel32();
    const h = k.getStdHandle(fd === 1 ? STD_OUTPUT_HANDLE : STD_ERROR_HANDLE);
    const mode = [0];
    if (h !== null && k.getConsoleMode(h, mode)) {
      const current = mode[0] ?? 0;
      ok = (current & ENABLE_VIRTUAL_TERMINAL_PROCESSING) !== 0 || k.setConsoleMode(h, current | ENABLE_VIRTUAL_TERMINAL_PROCESSING);
    }
  } catch {
    ok = false;
  }
  answers.set(fd, ok);
  return ok;
}
