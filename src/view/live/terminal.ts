/**
 * The terminal as the live view needs it: size, output, raw key input and resize notices, over
 * injected streams so that tests (and other front ends) can drive the view without a real TTY.
 * `restore` undoes everything `open` did and may be called any number of times, from any exit
 * path (quit, Ctrl+C, a signal, an uncaught error, process exit).
 */
import { ENTER, RESTORE } from "./ansi.ts";

export interface TerminalInput {
  isTTY?: boolean;
  setRawMode?(mode: boolean): unknown;
  on(event: "data", listener: (chunk: Buffer | string) => void): unknown;
  on(event: "end", listener: () => void): unknown;
  off(event: "data", listener: (chunk: Buffer | string) => void): unknown;
  off(event: "end", listener: () => void): unknown;
  resume(): unknown;
  pause(): unknown;
}

export interface TerminalOutput {
  readonly columns?: number;
  readonly rows?: number;
  write(text: string): unknown;
  /** Subscribes to size changes (SIGWINCH); returns how to unsubscribe. */
  onResize?(listener: () => void): () => void;
}

export interface LiveTerminal {
  size(): { columns: number; rows: number };
  write(text: string): void;
  /** Full screen, raw input; `onData` gets each read, `onEnd` the input's end (hang-up). */
  open(handlers: { onData(data: string): void; onResize(): void; onEnd(): void }): void;
  restore(): void;
}

export function streamTerminal(input: TerminalInput, output: TerminalOutput): LiveTerminal {
  let opened = false;
  let raw = false;
  let dataListener: ((chunk: Buffer | string) => void) | null = null;
  let endListener: (() => void) | null = null;
  let stopResize: (() => void) | null = null;
  return {
    size: () => ({ columns: output.columns || 80, rows: output.rows || 24 }),
    write: (text) => {
      output.write(text);
    },
    open(handlers) {
      if (opened) return;
      opened = true;
      if (input.isTTY && input.setRawMode) {
        input.setRawMode(true);
        raw = true;
      }
      dataListener = (chunk) => handlers.onData(typeof chunk === "string" ? chunk : chunk.toString("utf8"));
      endListener = () => handlers.onEnd();
      input.on("data", dataListener);
      input.on("end", endListener);
      input.resume();
      stopResize = output.onResize?.(() => handlers.onResize()) ?? null;
      output.write(ENTER);
    },
    restore() {
      if (!opened) return;
      opened = false;
      stopResize?.();
      if (dataListener) input.off("data", dataListener);
      if (endListener) input.off("end", endListener);
      try {
        if (raw) input.setRawMode?.(false);
      } catch {
        // The terminal may already be gone (hang-up); nothing to restore then.
      }
      input.pause();
      try {
        output.write(RESTORE);
      } catch {
        // Likewise.
      }
    },
  };
}
