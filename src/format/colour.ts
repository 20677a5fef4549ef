/**
 * Colour in text for people: whether to write it, and the few escape sequences event lines and
 * sink lines use.
 */
import { terminalShowsColour } from "../engine/index.ts";

export const ANSI = {
  green: "\x1b[32m",
  red: "\x1b[31m",
  yellow: "\x1b[33m",
  dim: "\x1b[2m",
  reset: "\x1b[0m",
} as const;

/**
 * Colour when writing to a terminal, unless NO_COLOR (set and not empty) asks for none. On
 * Windows the console must first be switched to interpret escape sequences; one that cannot be
 * gets plain text.
 */
export function useColour(stream: { isTTY?: boolean; fd?: number }): boolean {
  return !!stream.isTTY && !process.env.NO_COLOR && terminalShowsColour(stream);
}
