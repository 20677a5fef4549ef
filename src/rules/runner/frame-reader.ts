/**
 * The framing both sides of a rule runner share: `u32 length (little-endian) | u8 kind | body`,
 * split out of a byte stream that arrives in chunks of any size.
 */

export const HEADER = 5;
/**
 * The largest frame either side accepts. A payload of events is far smaller; a reply is bounded
 * by the rule's WebAssembly memory (what it returns must fit there first) plus JSON's escaping.
 */
export const MAX_FRAME_BYTES = 256 << 20;

export class ProtocolError extends Error {}

/**
 * Splits a byte stream into frames. Bytes arrive in chunks of any size; a frame is handed out
 * once it is whole.
 */
export class FrameReader {
  private chunks: Uint8Array[] = [];
  private buffered = 0;

  constructor(private readonly onFrame: (kind: number, body: Uint8Array) => void) {}

  push(chunk: Uint8Array): void {
    this.chunks.push(chunk);
    this.buffered += chunk.byteLength;
    while (this.buffered >= HEADER) {
      const head = this.peek(HEADER);
      const length = new DataView(head.buffer, head.byteOffset, HEADER).getUint32(0, true);
      if (length < 1 || length > MAX_FRAME_BYTES) throw new ProtocolError(`a frame of ${length} bytes is out of bounds`);
      if (this.buffered < 4 + length) return;
      const whole = this.take(4 + length);
      this.onFrame(whole[4]!, whole.subarray(HEADER));
    }
  }

  private peek(n: number): Uint8Array {
    if (this.chunks[0]!.byteLength >= n) return this.chunks[0]!;
    return this.join(n, false);
  }

  private take(n: number): Uint8Array {
    return this.join(n, true);
  }

  private join(n: number, consume: boolean): Uint8Array {
    const first = this.chunks[0]!;
    if (consume && first.byteLength === n) {
      this.chunks.shift();
      this.buffered -= n;
      return first;
    }
    if (consume && first.byteLength > n) {
      this.chunks[0] = first.subarray(n);
      this.buffered -= n;
      return first.subarray(0, n);
    }
    const out = new Uint8Array(n);
    let filled = 0;
    let i = 0;
    while (filled < n) {
      const c = this.chunks[i]!;
      const part = Math.min(c.byteLength, n - filled);
      out.set(c.subarray(0, part), filled);
      filled += part;
      if (consume) {
        if (part === c.byteLength) {
          this.chunks.shift();
          continue;
        }
        this.chunks[0] = c.subarray(part);
      }
      i++;
    }
    if (consume) this.buffered -= n;
    return out;
  }
}
