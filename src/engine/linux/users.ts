/**
 * uid -> user name from /etc/passwd, read directly: locked-down boxes may have no getent, and
 * NSS modules are out of reach from a single static program anyway.
 */
import fs from "node:fs";

export function parsePasswd(text: string): Map<number, string> {
  const users = new Map<number, string>();
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const fields = line.split(":");
    if (fields.length < 3) continue;
    const uid = Number(fields[2]);
    // The first entry for a uid wins, as getpwuid does.
    if (fields[0] && Number.isInteger(uid) && uid >= 0 && !users.has(uid)) users.set(uid, fields[0]);
  }
  return users;
}

export class UserTable {
  private users: Map<number, string> | null = null;
  constructor(private readonly passwdPath = "/etc/passwd") {}

  name(uid: number | null): string | null {
    if (uid === null) return null;
    if (!this.users) {
      try {
        this.users = parsePasswd(fs.readFileSync(this.passwdPath, "utf8"));
      } catch {
        this.users = new Map();
      }
    }
    return this.users.get(uid) ?? String(uid);
  }
}
