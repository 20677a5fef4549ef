/**
 * Terminal input to key names. In raw mode a key arrives as one character, a control byte, or an
 * escape sequence (xterm and VT220 forms, both cursor-key modes); several keys can arrive in one
 * read, e.g. when typing fast or when a test sends them at once.
 *
 * Names: printable characters stand for themselves; others are "up", "down", "left", "right",
 * "pageup", "pagedown", "home", "end", "enter", "escape", "backspace", "tab", "delete", "f1",
 * "f5", and "ctrl-<letter>".
 */

const SEQUENCES: Record<string, string> = {
  "[A": "up", "[B": "down", "[C": "right", "[D": "left",
  OA: "up", OB: "down", OC: "right", OD: "left",
  "[H": "home", "[F": "end", OH: "home", OF: "end",
  "[1~": "home", "[7~": "home", "[4~": "end", "[8~": "end",
  "[5~": "pageup", "[6~": "pagedown", "[3~": "delete", "[2~": "insert",
  OP: "f1", "[11~": "f1", "[[A": "f1", "[15~": "f5", "[[E": "f5",
};

/** Splits one read of terminal input into key names; unknown sequences are dropped. */
export function parseKeys(data: string): string[] {
  const keys: string[] = [];
  let i = 0;
  while (i < data.length) {
    const ch = data[i]!;
    if (ch === "\x1b") {
      const rest = data.slice(i + 1);
      const seq = escapeSequence(rest);
      if (seq === null) {
        // A lone ESC (or ESC followed by a plain key, as Alt+key sends): the Escape key.
        keys.push("escape");
        i += 1;
      } else {
        const name = SEQUENCES[seq] ?? SEQUENCES[withoutModifiers(seq)];
        if (name) keys.push(name);
        i += 1 + seq.length;
      }
      continue;
    }
    const code = ch.charCodeAt(0);
    if (ch === "\r" || ch === "\n") keys.push("enter");
    else if (ch === "\t") keys.push("tab");
    else if (code === 0x7f || code === 0x08) keys.push("backspace");
    else if (code < 0x20) keys.push(`ctrl-${String.fromCharCode(code + 0x60)}`);
    else {
      // Keep a surrogate pair together.
      const cp = data.codePointAt(i)!;
      const text = String.fromCodePoint(cp);
      keys.push(text);
      i += text.length;
      continue;
    }
    i += 1;
  }
  return keys;
}

/** The CSI or SS3 sequence after an ESC ("[A", "OP", "[15~"...), or null when there is none. */
function escapeSequence(rest: string): string | null {
  if (rest.startsWith("O") && rest.length >= 2) return rest.slice(0, 2);
  if (!rest.startsWith("[")) return null;
  // The Linux console's function keys: ESC [ [ A..E.
  if (rest[1] === "[" && rest.length >= 3) return rest.slice(0, 3);
  // CSI: parameter bytes 0x30-0x3f, intermediates 0x20-0x2f, one final byte 0x40-0x7e.
  let j = 1;
  while (j < rest.length && rest.charCodeAt(j) >= 0x20 && rest.charCodeAt(j) <= 0x3f) j++;
  if (j >= rest.length) return rest;
  const final = rest.charCodeAt(j);
  if (final < 0x40 || final > 0x7e) return rest.slice(0, j);
  return rest.slice(0, j + 1);
}

/** Modified keys (ESC [ 1 ; 5 A is Ctrl+Up, ESC [ 5 ; 2 ~ Shift+PgUp) read as the plain key. */
function withoutModifiers(seq: string): string {
  return seq.replace(/^\[1;\d+([A-Z])$/, "[$1").replace(/^\[(\d+);\d+~$/, "[$1~");
}
