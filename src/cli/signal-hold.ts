/**
 * SIGHUP, SIGINT and SIGTERM kept caught for the rest of the daemon's life. The runtime gives a
 * signal its default action back (ending the process at once, by that signal: no orderly stop,
 * the spool not synced, no exit status) the moment the signal's last listener is removed. The
 * daemon's own handlers come and go: a stop lets SIGHUP go, and they are all let go on the way
 * out, while the process still runs for a while. A listener that never leaves closes every such
 * moment, whoever adds or removes theirs.
 *
 * It acts on nothing: while the daemon starts and runs, its own handlers see every signal; after
 * they let go, the process is stopping or exiting already.
 */

const HELD = ["SIGHUP", "SIGINT", "SIGTERM"] as const;

let held = false;

const alreadyHandled = (): void => {};

/** Takes the three signals for good; call before the daemon's own handlers can first let go. */
export function holdDaemonSignals(): void {
  if (held) return;
  held = true;
  for (const signal of HELD) process.on(signal, alreadyHandled);
}
