/**
 * One TCP listener on 127.0.0.1 held by a small python process in a namespace, optionally run
 * as another user (`asUser` is a command prefix such as setpriv). For tests that need a known
 * socket but not the whole scenario.
 */

import type { BackgroundProcess, Netns } from "./netns.ts";
import { PYTHON } from "./scenario.ts";

const SCRIPT = [
  "import socket, sys, select",
  "s = socket.socket()",
  "s.bind(('127.0.0.1', 0))",
  "s.listen()",
  "print(s.getsockname()[1], flush=True)",
  // Until stdin closes, at most two minutes.
  "select.select([sys.stdin], [], [], 120)",
].join("\n");

export interface Listener {
  port: number;
  process: BackgroundProcess;
}

export async function startListener(ns: Netns, asUser: string[] = []): Promise<Listener> {
  const child = ns.spawn([...asUser, PYTHON, "-c", SCRIPT]);
  try {
    const line = await child.nextLine(15_000);
    const port = Number(line);
    if (!Number.isInteger(port) || port <= 0) throw new Error(`listener printed ${JSON.stringify(line)}`);
    return { port, process: child };
  } catch (error) {
    await child.stop();
    throw error;
  }
}
