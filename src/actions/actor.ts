/**
 * Who acted, for the audit log: the real and effective uid of this process, the login user the
 * kernel's audit subsystem keeps for its session (/proc/self/loginuid, which survives su and sudo)
 * and SUDO_USER. A close run through sudo then still names the person at the keyboard.
 */
import type { LoginUser } from "../engine/index.ts";

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

export interface ActorSources {
  /** The session's login user (the platform's loginUser); none asked: no login fields. */
  login?: () => LoginUser | null;
  env?: NodeJS.ProcessEnv;
  ids?: { uid: number | null; euid: number | null };
}

export function currentActor(sources: ActorSources = {}): Actor {
  const env = sources.env ?? process.env;
  const ids = sources.ids ?? { uid: process.getuid?.() ?? null, euid: process.geteuid?.() ?? null };
  const actor: Actor = { uid: ids.uid, euid: ids.euid };
  const login = sources.login?.() ?? null;
  if (login !== null) {
    actor.loginUid = login.uid;
    actor.loginUser = login.name;
  }
  if (env.SUDO_USER) actor.sudoUser = env.SUDO_USER;
  return actor;
}
