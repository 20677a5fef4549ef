/**
 * The two feeds a monitor may take besides snapshots, opened from its engine: the kernel's
 * destroy notices, and the sensor of state changes. Where one cannot be had, a note says what is
 * missed instead; a sensor that was required and cannot run is refused.
 */
import type { ClosedSocketFeed, SocketEngine, TransitionFeed } from "../engine/types.ts";
import { UnsupportedError } from "../errors.ts";

/** The engine's destroy notices, or null with a note saying what that misses. */
export function openClosedSockets(engine: SocketEngine, notes: string[]): ClosedSocketFeed | null {
  const missed = "connections shorter than one refresh are not seen";
  if (!engine.closedSockets) {
    notes.push(`${missed}: the ${engine.name} engine has no close notices`);
    return null;
  }
  try {
    return engine.closedSockets();
  } catch (err) {
    notes.push(`${missed}: ${(err as Error).message}`);
    return null;
  }
}

/**
 * The engine's sensor, or null with a note that it polls instead. `refuse` is called (and must
 * throw) where the sensor is required and cannot run.
 */
export function openTransitions(engine: SocketEngine, required: boolean, notes: string[], refuse: (err: unknown) => never): TransitionFeed | null {
  if (!engine.transitions) {
    const why = `the ${engine.name} engine has no sensor of state changes`;
    if (required) refuse(new UnsupportedError(`eBPF sensor unavailable: ${why}`));
    notes.push(`${why}; polling every refresh`);
    return null;
  }
  try {
    const feed = engine.transitions();
    for (const n of feed.notes) notes.push(n);
    return feed;
  } catch (err) {
    if (required) refuse(err);
    notes.push(`${(err as Error).message}; polling every refresh instead`);
    return null;
  }
}
