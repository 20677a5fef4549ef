/** The platform on Windows: the IP Helper engine, the console's colour, ProgramData. */
import os from "node:os";
import path from "node:path";
import { noLocalDatagram, type Platform } from "../platform.ts";
import { UnsupportedError } from "../../errors.ts";
import { WindowsEngine } from "./windows-engine.ts";
import { enableVirtualTerminal } from "./console.ts";
import { openWindowsProcess } from "./process-signal.ts";

const dataRoot = () => path.join(process.env.ProgramData ?? process.env.LOCALAPPDATA ?? os.homedir(), "sockwarden");

export function windowsPlatform(): Platform {
  return {
    createEngine: (options = {}) => {
      if (options.allNamespaces) throw new UnsupportedError("--all-namespaces is for Linux network namespaces; Windows has none");
      // Owner modules are looked up once per socket and shown in the JSON (module).
      return new WindowsEngine({ ...options, modules: true });
    },
    openProcess: openWindowsProcess,
    // The parent ends its children itself.
    endWithParent: () => true,
    // Consoles interpret escape sequences only once asked to (virtual terminal processing).
    terminalShowsColour: (stream) => !!stream.isTTY && enableVirtualTerminal(stream.fd === 2 ? 2 : 1),
    openLocalDatagram: noLocalDatagram,
    // Every process's sockets are listed with their owner.
    unreadableFilesReason: () => null,
    // Spool locks compare start times only where the OS gives them as /proc does.
    processStartTime: () => "",
    loginUser: () => null,
    places: {
      hosts: () => `${process.env["SystemRoot"] ?? "C:\\Windows"}\\System32\\drivers\\etc\\hosts`,
      auditLog: () => path.join(dataRoot(), "audit.log"),
      stateDir: () => path.join(dataRoot(), "state"),
    },
  };
}
