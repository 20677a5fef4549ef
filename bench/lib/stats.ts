// Small statistics over measured runs.

export function median(xs: readonly number[]): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export function min(xs: readonly number[]): number | null {
  return xs.length ? Math.min(...xs) : null;
}

export function max(xs: readonly number[]): number | null {
  return xs.length ? Math.max(...xs) : null;
}

export const MIB = 1024 * 1024;
