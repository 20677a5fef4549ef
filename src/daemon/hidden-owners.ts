/**
 * What hidden owners mean for the loaded rules. Without CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH
 * the engine cannot read other users' /proc/PID/fd, so their sockets come with no process: a rule
 * that decides by process name or PID then takes the mail server for any other process. The
 * engine's note says how many sockets; this says, rule by rule, what that does.
 */
import fs from "node:fs";
import type { Endpoint } from "../model/endpoint.ts";

/** A loaded rule as the rule set lists it: its name, and where it came from. */
export interface RuleRef {
  name: string;
  /** `plugin:NAME` for a bundled plugin, else the file's path. */
  label: string;
}

const REMEDY = "give sockwarden CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH";

/** What each bundled plugin cannot do without processes (plugins/*.ts). */
const PLUGIN_CONSEQUENCES: Record<string, string> = {
  "smtp-guard": "it cannot tell a mail server from another process and may close the mail server's connections",
  "outbound-allowlist": "it cannot tell an allowed process from another and may alert on (with mode = \"close\", close) the allowed processes' connections",
  "connection-flood": "it cannot count their connections by process, and floods from them go unseen",
  "new-listener": "it cannot name the process behind a new listener of theirs, nor leave out the ignoreProcesses",
};

const USER_RULE_CONSEQUENCE = "where it goes by process name or PID it sees none there, and may close or end what it should leave alone";

/**
 * One line per loaded rule that goes by processes, when sockets of other users show none
 * because their processes could not be read (`unreadableProcesses` > 0); none otherwise.
 * A rule file counts when its text can close or end something and reads processes (or cannot
 * be read: then it counts too).
 */
export function hiddenOwnerWarnings(
  rules: readonly RuleRef[],
  endpoints: Iterable<Endpoint>,
  unreadableProcesses: number,
  uid: number = process.getuid?.() ?? 0,
  readSource: (path: string) => string = (p) => fs.readFileSync(p, "utf8"),
): string[] {
  if (unreadableProcesses === 0 || rules.length === 0) return [];
  let hidden = 0;
  // As the engine counts them: sockets with an inode (TIME_WAIT has none) of another user.
  for (const ep of endpoints) if (ep.inode !== 0 && ep.process === null && ep.uid !== uid) hidden++;
  if (hidden === 0) return [];
  const sockets = `${hidden} socket${hidden === 1 ? "" : "s"} of other users show${hidden === 1 ? "s" : ""} no process`;
  const out: string[] = [];
  for (const r of rules) {
    const consequence = r.label.startsWith("plugin:") ? PLUGIN_CONSEQUENCES[r.label.slice("plugin:".length)] : userRuleConsequence(r.label, readSource);
    if (consequence) out.push(`${r.name}: ${sockets}, so ${consequence}; ${REMEDY}`);
  }
  return out;
}

function userRuleConsequence(path: string, readSource: (path: string) => string): string | null {
  let text: string;
  try {
    text = readSource(path);
  } catch {
    return USER_RULE_CONSEQUENCE;
  }
  const acts = /\b(close|kill)\b/.test(text);
  const readsProcesses = /\b(process|pids?)\b/.test(text);
  return acts && readsProcesses ? USER_RULE_CONSEQUENCE : null;
}
