/**
 * Text a user or another program hands sockwarden: the event NDJSON `rules test` reads, the
 * daemon's TOML configuration, the strings of the command line (endpoints, address filters, port
 * specifications, PIDs, states, event types, process globs, sinks) and terminal key input, plus
 * the source maps rules are compiled with. Each is generated from its grammar, then mutated.
 */
import fs from "node:fs";
import path from "node:path";
import fc from "fast-check";
import { parseEventLines } from "../../src/rules/event-json-input.ts";
import { parseConfig } from "../../src/daemon/config.ts";
import { parseEndpointArgument } from "../../src/cli/endpoint-argument.ts";
import { canonicalAddress, isLoopback, isPrivate, isUnspecified, parseAddressFilter, parseCidr, parseIP } from "../../src/net/address.ts";
import { parsePort, parsePortSpec } from "../../src/net/ports.ts";
import { parseSinkSpec } from "../../src/outputs/sink-spec.ts";
import { parsePid } from "../../src/cli/proc-command.ts";
import { parseStates } from "../../src/filter/state-names.ts";
import { parseEventTypes } from "../../src/cli/watch-command.ts";
import { buildSelection } from "../../src/filter/endpoint-filter.ts";
import { LineMap, decodeMappings } from "../../src/rules/source-map.ts";
import { parseKeys } from "../../src/view/live/keys.ts";
import type { Endpoint } from "../../src/model/endpoint.ts";
import { hexDigits, joinLines, mutatedText, noise, randomText, repeated, seededString } from "./mutate.ts";
import { each, target } from "./target.ts";
import { NO_COUNTERS, endpoint, processInfo } from "../support/endpoints.ts";

const ROOT = path.join(import.meta.dirname, "../..");

// ---- event NDJSON ----

const EVENT_FIXTURES = fs
  .readdirSync(path.join(ROOT, "test/fixtures/events"))
  .filter((f) => f.endsWith(".ndjson"))
  .flatMap((f) => fs.readFileSync(path.join(ROOT, "test/fixtures/events", f), "utf8").split("\n").filter(Boolean).slice(0, 40));

const EVENT_OBJECTS = EVENT_FIXTURES.map((l) => JSON.parse(l) as Record<string, unknown>);

const EVENT_KEYS = [
  "type", "seq", "time", "protocol", "family", "localAddress", "localPort", "remoteAddress", "remotePort", "state",
  "previousState", "inode", "uid", "user", "interfaceIndex", "receiveQueue", "sendQueue", "bytesSent", "bytesReceived",
  "packetsSent", "packetsReceived", "rttMs", "cookie", "process", "pids", "namespace", "counters", "shortLived",
];
const PROCESS_KEYS = ["pid", "name", "path", "cmdline", "uid", "user", "startTime", "ppid", "unit", "container"];

/** A JSON value of the right type for the field half the time, of any type otherwise. */
const anyJson = fc.oneof(
  fc.constantFrom(null, true, false, 0, -1, 1e308, "", "ESTABLISHED", "state-changed", "tcp", "udp", 4, 6, "2026-01-01T00:00:00Z", "not a date", [], {}),
  fc.jsonValue({ maxDepth: 2 }),
);

interface Edit {
  key: string;
  value: unknown;
  inProcess: boolean;
  remove: boolean;
}

const edit: fc.Arbitrary<Edit> = fc.record({
  key: fc.oneof(fc.constantFrom(...EVENT_KEYS), fc.constantFrom(...PROCESS_KEYS), fc.constantFrom("__proto__", "constructor", "toString")),
  value: anyJson,
  inProcess: fc.boolean(),
  remove: fc.boolean(),
});

function applyEdit(event: Record<string, unknown>, e: Edit): Record<string, unknown> {
  const o: Record<string, unknown> = { ...event };
  let into = o;
  if (e.inProcess) {
    const p = o.process && typeof o.process === "object" ? { ...(o.process as Record<string, unknown>) } : {};
    o.process = p;
    into = p;
  }
  if (e.remove) delete into[e.key];
  else Object.defineProperty(into, e.key, { value: e.value, enumerable: true, writable: true, configurable: true });
  return o;
}

/** An event from the recordings with some fields deleted or replaced by values of any type. */
const editedEvent = fc
  .tuple(fc.constantFrom(...EVENT_OBJECTS), fc.array(edit, { minLength: 1, maxLength: 4 }))
  .map(([event, edits]) => JSON.stringify(edits.reduce(applyEdit, event)));

const eventLine = fc.oneof(
  { weight: 15, arbitrary: fc.constantFrom(...EVENT_FIXTURES) },
  { weight: 30, arbitrary: editedEvent },
  { weight: 10, arbitrary: mutatedText(fc.constantFrom(...EVENT_FIXTURES), 3) },
  { weight: 5, arbitrary: fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)) },
  { weight: 5, arbitrary: fc.oneof(noise, randomText) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 5_000 }).map((n) => `${"[".repeat(n)}${"]".repeat(n)}`) },
);

export const eventNdjson = target({
  name: "event-ndjson",
  covers: "parseEventLines (the recorded events `rules test --events` reads)",
  input: joinLines(fc.array(eventLine, { maxLength: 4 })),
  decode(text) {
    parseEventLines(text, "events.ndjson");
  },
});

// ---- TOML configuration ----

const CONFIG_KEYS = [
  "interval", "dry_run", "audit_log", "metrics", "all_namespaces", "rules", "sinks", "protect", "limits", "sandbox", "kill",
  "sources", "options", "ports", "addresses", "processes", "paths", "actions_per_minute", "memory_mb", "wasm_memory_mb",
  "time_budget_ms", "max_failures", "grace_ms", "smtp-guard",
];
const TABLE_PATHS = ["rules", "rules.options", "rules.options.smtp-guard", "protect", "limits", "limits.rules", "limits.rules.smtp-guard", "sandbox", "kill", "rules.options.\"a.b\""];

const bareKey = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...CONFIG_KEYS) },
  { weight: 1, arbitrary: fc.constantFrom("__proto__", "constructor", "hasOwnProperty", "\"quoted key\"", "'lit'", "\"\"", "a.b", "1", "-") },
  { weight: 1, arbitrary: seededString("abcdefghijklmnopqrstuvwxyz_-0123456789", 1, 12) },
);
const key = fc.oneof({ weight: 4, arbitrary: bareKey }, { weight: 1, arbitrary: fc.array(bareKey, { minLength: 2, maxLength: 3 }).map((k) => k.join(".")) });

const tomlScalar = fc.oneof(
  fc.constantFrom("1", "0", "-1", "0.1", "3600", "3601", "1e6", "1e309", "inf", "-inf", "nan", "+nan", "0x10", "0o17", "0b101", "1_000", "9223372036854775807", "9223372036854775808", "-0.0", "1979-05-27T07:32:00Z", "07:32:00", "1979-05-27"),
  fc.constantFrom("true", "false"),
  fc.constantFrom('"stdout"', '"file:/var/log/x.ndjson?maxBytes=10M"', '"127.0.0.1:9464"', '"smtp-guard"', '"10.0.0.0/8"', '"systemd*"', "'literal'", '"\\u00e9\\n"', '"\\uD800"', '""', '"\\x"'),
  fc.string({ maxLength: 12 }).map((s) => JSON.stringify(s)),
  fc.double().map(String),
  fc.integer().map(String),
);

const tomlValue: fc.Arbitrary<string> = fc.letrec<{ value: string }>((tie) => ({
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    { weight: 6, arbitrary: tomlScalar },
    { weight: 1, arbitrary: fc.array(tie("value"), { maxLength: 4 }).map((vs) => `[${vs.join(", ")}]`) },
    { weight: 1, arbitrary: fc.array(fc.tuple(key, tie("value")), { maxLength: 3 }).map((kvs) => `{ ${kvs.map(([k, v]) => `${k} = ${v}`).join(", ")} }`) },
    { weight: 1, arbitrary: fc.string({ maxLength: 20 }).map((s) => `"""\n${s.replaceAll('"""', "")}\n"""`) },
  ),
})).value;

const tomlLine = fc.oneof(
  { weight: 6, arbitrary: fc.tuple(key, fc.constantFrom(" = ", "=", " =  "), tomlValue, fc.constantFrom("", "  # note")).map((p) => p.join("")) },
  { weight: 2, arbitrary: fc.oneof(fc.constantFrom(...TABLE_PATHS), key).map((t) => `[${t}]`) },
  { weight: 1, arbitrary: fc.oneof(fc.constantFrom(...TABLE_PATHS), key).map((t) => `[[${t}]]`) },
  { weight: 1, arbitrary: fc.constantFrom("", "# comment", "   ") },
);

const tomlText = joinLines(fc.array(tomlLine, { maxLength: 10 }));
const EXAMPLE_CONFIG = fs.readFileSync(path.join(ROOT, "examples/sockwarden.toml"), "utf8");

export const configToml = target({
  name: "config-toml",
  covers: "parseConfig (the daemon's TOML configuration, through Bun.TOML.parse)",
  input: fc.oneof(
    { weight: 10, arbitrary: tomlText },
    { weight: 4, arbitrary: mutatedText(tomlText, 3) },
    { weight: 6, arbitrary: mutatedText(fc.constant(EXAMPLE_CONFIG), 4) },
    { weight: 2, arbitrary: randomText },
    { weight: 1, arbitrary: repeated(fc.constantFrom("[", "a = [", "{a=", "a.", "\"", "[ ", "x = \"\"\"\n[ ")) },
  ),
  decode(text) {
    parseConfig(text, "sockwarden.toml");
  },
});

// ---- addresses and ports as typed on the command line ----

const octet = fc.oneof({ weight: 6, arbitrary: fc.nat(255).map(String) }, { weight: 1, arbitrary: fc.constantFrom("256", "01", "00", "-1", "", "1e2", "0x1", "999999") });
const ipv4 = fc.oneof(
  { weight: 6, arbitrary: fc.tuple(octet, octet, octet, octet).map((o) => o.join(".")) },
  { weight: 1, arbitrary: fc.array(octet, { maxLength: 6 }).map((o) => o.join(".")) },
);
const group = fc.oneof({ weight: 6, arbitrary: hexDigits(1, 4, false) }, { weight: 1, arbitrary: fc.constantFrom("", "00000", "g", "FFFF", "-1") });
const ipv6 = fc.oneof(
  { weight: 3, arbitrary: fc.array(group, { minLength: 8, maxLength: 8 }).map((g) => g.join(":")) },
  {
    weight: 4,
    arbitrary: fc
      .tuple(fc.array(group, { maxLength: 7 }), fc.array(group, { maxLength: 7 }))
      .map(([a, b]) => `${a.join(":")}::${b.join(":")}`),
  },
  { weight: 2, arbitrary: fc.tuple(fc.array(group, { maxLength: 6 }), ipv4).map(([g, v4]) => `${g.join(":")}::${v4}`) },
  { weight: 1, arbitrary: fc.constantFrom("::", "::1", "::ffff:10.0.0.1", "fe80::1", ":::", "1::2::3", "::ffff:1.2.3.4.5") },
);
const zone = fc.oneof(fc.constantFrom("eth0", "12", "lo", "", "a b", "%"), noise);
const address = fc.oneof(
  { weight: 4, arbitrary: ipv4 },
  { weight: 4, arbitrary: ipv6 },
  { weight: 1, arbitrary: fc.tuple(ipv6, zone).map(([a, z]) => `${a}%${z}`) },
  { weight: 1, arbitrary: fc.constantFrom("*", "", "localhost", "0", "[", "]") },
);
const portText = fc.oneof(
  { weight: 5, arbitrary: fc.nat(70_000).map(String) },
  { weight: 2, arbitrary: fc.constantFrom("smtp", "http", "domain", "ssh", "nosuchservice", "SMTP", "*", "", "-1", "+1", "0x19", "1e3", "00025", "25 ", " 25") },
  { weight: 2, arbitrary: fc.tuple(fc.nat(70_000), fc.nat(70_000)).map(([a, b]) => `${a}-${b}`) },
  { weight: 1, arbitrary: noise },
);
const portSpec = fc.oneof(
  { weight: 20, arbitrary: fc.array(portText, { minLength: 1, maxLength: 4 }).map((p) => p.join(",")) },
  { weight: 1, arbitrary: repeated(fc.constantFrom("1,", "1-2,", "smtp,", ",")) },
);
const prefix = fc.oneof(fc.nat(130).map(String), fc.constantFrom("", "-1", "08", "1000", "a"));
const cidr = fc.tuple(address, prefix).map(([a, p]) => `${a}/${p}`);

/** Endpoint and filter strings in their documented shapes, and near misses. */
const endpointLike = fc.oneof(
  { weight: 3, arbitrary: fc.tuple(ipv4, portText).map(([a, p]) => `${a}:${p}`) },
  { weight: 3, arbitrary: fc.tuple(fc.oneof(ipv6, address), portText).map(([a, p]) => `[${a}]:${p}`) },
  { weight: 1, arbitrary: fc.tuple(ipv6, portText).map(([a, p]) => `${a}:${p}`) },
  { weight: 1, arbitrary: fc.tuple(cidr, portSpec).map(([c, p]) => `${c}:${p}`) },
  { weight: 1, arbitrary: fc.tuple(cidr, portSpec).map(([c, p]) => `[${c}]:${p}`) },
  { weight: 1, arbitrary: portSpec.map((p) => `:${p}`) },
  { weight: 1, arbitrary: fc.oneof(address, cidr, portSpec) },
);
const cliString = fc.oneof(
  { weight: 12, arbitrary: endpointLike },
  { weight: 6, arbitrary: mutatedText(endpointLike, 2) },
  { weight: 2, arbitrary: randomText },
  { weight: 1, arbitrary: repeated(fc.constantFrom(":", "::", "1:", "[", "1.", "%", "/", "a")) },
);
const protocol = fc.constantFrom(undefined, "tcp" as const, "udp" as const);

export const cliEndpoint = target({
  name: "cli-endpoint",
  covers: "parseEndpointArgument (ADDRESS:PORT of `close`), canonicalAddress, parseIP",
  input: cliString,
  decode(text) {
    canonicalAddress(text);
    const ip = parseIP(text);
    if (ip) void [isLoopback(ip), isPrivate(ip), isUnspecified(ip)];
    parseEndpointArgument(text);
  },
});

const PROBES: [string, number][] = [["10.0.0.5", 25], ["::ffff:10.0.0.5", 443], ["fe80::1%eth0", 22], ["2001:db8::1", 0], ["not an address", 1]];

export const addressFilter = target({
  name: "address-filter",
  covers: "parseAddressFilter (--local / --remote), parseCidr, and the matchers they return",
  input: fc.tuple(cliString, protocol),
  decode([text, proto]) {
    each(
      () => {
        const c = parseCidr(text);
        for (const [a] of PROBES) c.matches(a);
        c.toString();
      },
      () => {
        const f = parseAddressFilter(text, proto);
        for (const [a, p] of PROBES) f.matches(a, p);
        f.describe();
      },
    );
  },
});

export const portSpecTarget = target({
  name: "port-spec",
  covers: "parsePortSpec (--port), parsePort",
  input: fc.tuple(fc.oneof({ weight: 5, arbitrary: portSpec }, { weight: 2, arbitrary: mutatedText(portSpec, 2) }, { weight: 1, arbitrary: randomText }), protocol),
  decode([text, proto]) {
    each(
      () => parsePort(text, proto),
      () => {
        const m = parsePortSpec(text, proto);
        for (const p of [0, 25, 443, 65535, 70000]) m.matches(p);
        m.describe();
      },
    );
  },
});

// ---- other command-line strings ----

const TCP_STATE_WORDS = ["established", "ESTAB", "syn-sent", "syn_recv", "fin-wait-1", "FIN_WAIT2", "time-wait", "close", "closed", "close-wait", "last-ack", "listen", "listening", "closing", "connected", "synchronized", "bucket", "big", "bigger", ""];
const EVENT_WORDS = ["opened", "closed", "state-changed", "counters", "OPENED", "", "open"];
const wordList = (words: string[]) =>
  fc
    .tuple(fc.array(fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...words) }, { weight: 1, arbitrary: noise }), { maxLength: 4 }), fc.constantFrom(",", ", "))
    .map(([w, comma]) => w.join(comma));

const PROCESS_NAMES = ["nginx", "sshd", "postfix/smtpd", "a".repeat(40), "systemd-resolved", "", "x*?"];
const processGlob = fc.oneof(
  { weight: 3, arbitrary: fc.string({ unit: fc.constantFrom("*", "?", "a", "b", "n", "x"), maxLength: 24 }) },
  { weight: 2, arbitrary: fc.oneof(fc.constantFrom("nginx", "post*", "ssh?", "*", "**", "1234", "0", "99999999999999999999"), fc.nat().map(String)) },
  { weight: 1, arbitrary: randomText },
);

function endpointFor(name: string, i: number): Endpoint {
  return endpoint({
    protocol: i % 2 ? "udp" : "tcp", family: i % 3 ? 4 : 6, localAddress: i % 3 ? "10.0.0.5" : "::1", localPort: 25 * i,
    remoteAddress: i % 3 ? "192.168.1.9" : "fe80::1", remotePort: 40000 + i, state: i % 2 ? null : "ESTABLISHED", inode: i,
    ...NO_COUNTERS, cookie: null, pids: [i + 1],
    process: processInfo({ pid: i + 1, name, path: `/usr/sbin/${name}${"a".repeat(i * 40)}`, cmdline: name }),
  });
}
const ENDPOINTS = PROCESS_NAMES.map(endpointFor);

export const cliArgs = target({
  name: "cli-args",
  covers: "parsePid, parseStates (--state), parseEventTypes (--events), buildSelection with process globs and the matcher it returns",
  input: fc.record({
    pid: fc.oneof(fc.nat().map(String), fc.constantFrom("0", "-1", "4194304", "4194305", " 12 ", "1e3", "0x10", ""), noise),
    states: fc.array(wordList(TCP_STATE_WORDS), { maxLength: 2 }),
    events: fc.option(fc.array(wordList(EVENT_WORDS), { maxLength: 2 })),
    forPrograms: fc.boolean(),
    process: fc.option(processGlob),
    port: fc.array(portSpec, { maxLength: 1 }),
    local: fc.array(cliString, { maxLength: 1 }),
    all: fc.boolean(),
  }),
  decode(a) {
    each(
      () => parsePid(a.pid),
      () => parseStates(a.states),
      () => parseEventTypes(a.events ?? undefined, a.forPrograms),
      () => {
        const s = buildSelection({ all: a.all, state: a.states, port: a.port, local: a.local, process: a.process ?? undefined });
        for (const ep of ENDPOINTS) s.matches(ep);
      },
    );
  },
});

// ---- sinks ----

const optionValue = fc.oneof(
  fc.constantFrom("10M", "512K", "1G", "10MiB", "0", "1", "5", "infinite", "local0", "rfc5424", "rfc3164", "warden", "%41", "%", "%zz", "%E0%A4%A", "%ff", "", "-1", "9007199254740993", "1e3"),
  fc.nat().map(String),
  noise,
);
const OPTION_KEYS = ["maxBytes", "keep", "queueSize", "facility", "appName", "format", "maxMessageBytes", "batchSize", "timeoutMs", "maxRetries", "backoffMs", "maxBackoffMs", "bogus", ""];
const options = fc.array(fc.tuple(fc.constantFrom(...OPTION_KEYS), fc.constantFrom("=", ""), optionValue).map((p) => p.join("")), { maxLength: 3 }).map((o) => o.join("&"));
const sinkSpec = fc.oneof(
  fc.constantFrom("stdout", "stdout:ndjson", "stdout:human", "stdout:x", "syslog", "file", "file:", "webhook", "webhook:", "", ":", "Stdout"),
  fc.tuple(fc.constantFrom("/var/log/a.ndjson", "relative.log", "", "/"), options).map(([p, o]) => `file:${p}?${o}`),
  fc.tuple(fc.constantFrom("", "local", "/run/x.sock", "udp://10.0.0.2:514", "tcp://[2001:db8::2]:6514", "udp://host:0", "tcp://:1", "udp://[zz]:1", "tcp://h:99999"), options).map(([t, o]) => `syslog:${t}?${o}`),
  options.map((o) => `syslog?${o}`),
  fc.tuple(fc.constantFrom("https://hooks.example.net/a?token=x", "http://[::1]:8080/", "ftp://x", "https://", "http://exa mple", "https://a.example/%zz", "notaurl"), options).map(([u, o]) => `webhook:${u}#${o}`),
);

export const sinkSpecTarget = target({
  name: "sink-spec",
  covers: "parseSinkSpec (--sink and the configuration's sinks)",
  input: fc.oneof({ weight: 5, arbitrary: sinkSpec }, { weight: 3, arbitrary: mutatedText(sinkSpec, 2) }, { weight: 1, arbitrary: randomText }),
  decode(text) {
    parseSinkSpec(text);
  },
});

// ---- source maps ----

const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const vlqSegment = seededString(B64, 1, 8);
const mappings = fc
  .array(fc.array(vlqSegment, { maxLength: 5 }).map((s) => s.join(",")), { maxLength: 8 })
  .map((lines) => lines.join(";"));

export const sourceMap = target({
  name: "source-map",
  covers: "decodeMappings, LineMap.original (source maps of compiled rules)",
  input: fc.tuple(fc.oneof({ weight: 5, arbitrary: mappings }, { weight: 2, arbitrary: mutatedText(mappings, 2) }, { weight: 1, arbitrary: randomText }), fc.nat(12), fc.nat(200)),
  decode([text, line, column]) {
    decodeMappings(text);
    new LineMap(text).original(line, column);
  },
});

// ---- terminal input ----

const keyInput = fc
  .array(
    fc.oneof(
      fc.constantFrom("\x1b[A", "\x1b[B", "\x1bOP", "\x1b[15~", "\x1b[1;5A", "\x1b[5;2~", "\x1b[[A", "\x1b", "\x1b[", "\x1bO", "\r", "\x7f", "\x03", "q", "é", "\ud83d\ude00", "\ud800"),
      fc.string({ unit: fc.constantFrom("\x1b", "[", "O", "1", ";", "~", "A", "\x00", " ", "?"), maxLength: 8 }),
      fc.string({ unit: "binary", maxLength: 6 }),
    ),
    { maxLength: 8 },
  )
  .map((k) => k.join(""));

export const terminalKeys = target({
  name: "terminal-keys",
  covers: "parseKeys (keys read from the terminal by the live view)",
  input: fc.oneof({ weight: 20, arbitrary: keyInput }, { weight: 1, arbitrary: repeated(fc.constantFrom("\x1b", "\x1b[", "\x1b[1", "\x1bO")) }),
  decode(text) {
    parseKeys(text);
  },
});

export const TEXT_TARGETS = [eventNdjson, configToml, cliEndpoint, addressFilter, portSpecTarget, cliArgs, sinkSpecTarget, sourceMap, terminalKeys];
