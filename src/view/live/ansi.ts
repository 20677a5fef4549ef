/**
 * The escape sequences the live view writes: text attributes (SGR) and the screen modes it sets
 * on entry and must undo on exit. Plain ECMA-48 / xterm sequences that every terminal in use
 * (xterm, VTE, tmux, screen, the Linux console, Windows Terminal) understands.
 */

export const SGR = {
  reset: "\x1b[0m",
  bold: "\x1b[1m",
  underline: "\x1b[4m",
  inverse: "\x1b[7m",
  red: "\x1b[31m",
  green: "\x1b[32m",
  yellow: "\x1b[33m",
  cyan: "\x1b[36m",
} as const;

export const SCREEN = {
  /** Alternate screen buffer: the user's scrollback is left as it was. */
  enterAlternate: "\x1b[?1049h",
  leaveAlternate: "\x1b[?1049l",
  hideCursor: "\x1b[?25l",
  showCursor: "\x1b[?25h",
  /** No auto-wrap, so a line that fills the width exactly cannot scroll the screen. */
  noWrap: "\x1b[?7l",
  wrap: "\x1b[?7h",
  home: "\x1b[H",
  clear: "\x1b[2J",
  clearToEnd: "\x1b[K",
} as const;

/** Everything that entering the view changed, undone; safe to write more than once. */
export const RESTORE = SGR.reset + SCREEN.wrap + SCREEN.showCursor + SCREEN.leaveAlternate;
export const ENTER = SCREEN.enterAlternate + SCREEN.hideCursor + SCREEN.noWrap + SCREEN.clear;
