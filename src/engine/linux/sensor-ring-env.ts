/** The sensor's ring size as a user may set it, for bursts that overflow the default. */

/** Accepted values of SOCKWARDEN_SENSOR_RING_BYTES: a page to 256 MiB. */
export const RING_BYTES_MIN = 4096;
export const RING_BYTES_MAX = 256 * 1024 * 1024;

/**
 * The ring buffer's size from SOCKWARDEN_SENSOR_RING_BYTES, for machines whose bursts overflow
 * the default (and for tests that make it overflow); a bad value is ignored with a note.
 */
export function ringBytesFromEnv(env: Record<string, string | undefined>): { bytes: number | null; note: string | null } {
  const text = env.SOCKWARDEN_SENSOR_RING_BYTES;
  if (text === undefined || text === "") return { bytes: null, note: null };
  const bytes = /^\d+$/.test(text.trim()) ? Number(text.trim()) : Number.NaN;
  if (!Number.isSafeInteger(bytes) || bytes < RING_BYTES_MIN || bytes > RING_BYTES_MAX) {
    return { bytes: null, note: `SOCKWARDEN_SENSOR_RING_BYTES=${JSON.stringify(text)} is ignored: it must be a whole number of bytes from ${RING_BYTES_MIN} to ${RING_BYTES_MAX}` };
  }
  return { bytes, note: null };
}
