/**
 * Who acted, for the audit log: the real and effective uid of this process, the login user the
 * kernel's audit subsystem keeps for its session (/proc/self/loginuid, which survives su and sudo)
 * and SUDO_USER. A close run through sudo then still names the person at the keyboard.
 */
import fs from "node:fs";
import path from "node:path";
import { UserTable } from "../engine/linux/users.ts";

export interface Actor {
  /** Real uid; null where the OS has none (Windows). */
  uid: number | null;
  /** Effective uid, the one the kernel checks; null where the OS has none. */
  euid: number | null;
  /** The session's login uid, absent when unset (4294967295) or not kept (no audit support). */
  loginUid?: number;
  /** Its user name from /etc/passwd, or the number as text when it has none. */
  loginUser?: string;
  /** SUDO_USER, as sudo set it, when set. */
  sudoUser?: string;
}

/** (uid_t)-1: the loginuid of a process no login set. */
const UNSET_LOGINUID = 4294967295;

export interface ActorSources {
  procRoot?: string;
  env?: NodeJS.ProcessEnv;
  users?: UserTable;
  ids?: { uid: number | null; euid: number | null };
}

export function currentActor(sources: ActorSources = {}): Actor {
  const env = sources.env ?? process.env;
  const ids = sources.ids ?? { uid: process.getuid?.() ?? null, euid: process.geteuid?.() ?? null };
  const actor: Actor = { uid: ids.uid, euid: ids.euid };
  const loginUid = readLoginUid(path.join(sources.procRoot ?? "/proc", "self", "loginuid"));
  if (loginUid !== null) {
    actor.loginUid = loginUid;
    actor.loginUser = (sources.users ?? new UserTable()).name(loginUid) ?? String(loginUid);
  }
  if (env.SUDO_USER) actor.sudoUser = env.SUDO_USER;
  return actor;
}

function readLoginUid(file: string): number | null {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8").trim();
  } catch {
    // No audit support in the kernel, or not Linux.
    return null;
  }
  if (!/^\d+$/.test(text)) return null;
  const uid = Number(text);
  return uid === UNSET_LOGINUID ? null : uid;
}
