/**
 * Picks the socket engine for the running operating system. Code outside src/engine depends only
 * on the SocketEngine interface and the records in types.ts.
 */
import type { SocketEngine } from "./types.ts";
import { UnsupportedError } from "../errors.ts";
import { LinuxEngine, type LinuxEngineOptions } from "./linux/linux-engine.ts";

export type EngineOptions = LinuxEngineOptions;

export function createEngine(options: EngineOptions = {}): SocketEngine {
  switch (process.platform) {
    case "linux":
      return new LinuxEngine(options);
    default:
      throw new UnsupportedError(`sockwarden has no socket engine for ${process.platform} yet`);
  }
}

export type * from "./types.ts";
