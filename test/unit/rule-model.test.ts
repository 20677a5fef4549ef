/**
 * What a rule sees of an endpoint is what `list --json` carries, and the shipped declarations
 * (sockwarden.d.ts) say exactly that. Real sockets on loopback, opened here, are read through the
 * Linux engine with their processes and every namespace (as `run -N` reads them), handed to a
 * rule in the real sandbox, and the rule writes back the key paths and the JSON of each endpoint
 * it got: both must equal endpointToJson's. An endpoint with every optional part filled (a
 * container, a namespace with a name, Windows' createdAt and module) covers the keys real
 * loopback sockets leave null. The declarations are read with the TypeScript compiler API.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import net from "node:net";
import dgram from "node:dgram";
import { readFileSync } from "node:fs";
import path from "node:path";
import ts from "typescript";
import { createEngine } from "../../src/engine/index.ts";
import type { Endpoint } from "../../src/model/endpoint.ts";
import { compileRule } from "../../src/rules/compile-rule.ts";
import { encodeEndpoints, encodeEvents } from "../../src/rules/guest-payload.ts";
import { RuleSandbox } from "../../src/rules/sandbox.ts";
import { endpointJsonText, endpointToJson } from "../../src/format/endpoint-json.ts";

const DECLARATIONS = path.resolve(import.meta.dirname, "../../src/rules/sockwarden.d.ts");

/** Logs, per endpoint, its key paths (depth first, in order) and its JSON. */
const ECHO_RULE = `import { defineRule } from "sockwarden";
function paths(value: unknown, prefix: string, out: string[]): string[] {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return out;
  for (const k of Object.keys(value)) {
    out.push(prefix + k);
    paths((value as Record<string, unknown>)[k], prefix + k + ".", out);
  }
  return out;
}
export default defineRule({
  name: "model-echo",
  on: ["opened"],
  start(endpoints, act) {
    for (const ep of endpoints) act.log(JSON.stringify({ keys: paths(ep, "", []), json: JSON.stringify(ep) }));
  },
  handle(event, act) {
    act.log(JSON.stringify({ keys: paths(event.endpoint, "", []), json: JSON.stringify(event.endpoint) }));
  },
});
`;

/** The same walk on the host. */
function paths(value: unknown, prefix = "", out: string[] = []): string[] {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return out;
  for (const [k, v] of Object.entries(value)) {
    out.push(prefix + k);
    paths(v, `${prefix}${k}.`, out);
  }
  return out;
}

interface Seen {
  keys: string[];
  json: string;
}

let sandbox: RuleSandbox;

/** What the rule sees of each endpoint: through start (a list) and through an event each. */
async function seenByRule(endpoints: Endpoint[]): Promise<{ start: Seen[]; events: Seen[] }> {
  const read = (r: { actions: unknown[][]; failures: unknown[] }) => {
    expect(r.failures).toEqual([]);
    return r.actions.map((a) => JSON.parse(a[1] as string) as Seen);
  };
  const start = read(await sandbox.call("start", encodeEndpoints(endpoints), Date.now()));
  const events = endpoints.map((endpoint, i) => ({ type: "opened" as const, seq: i + 1, time: Date.now(), endpoint }));
  return { start, events: read(await sandbox.dispatch(encodeEvents(events), events.length)) };
}

/** Key paths an interface declares, following members typed by other interfaces of the module. */
function declaredPaths(): { all: string[]; optional: string[] } {
  const file = ts.createSourceFile(DECLARATIONS, readFileSync(DECLARATIONS, "utf8"), ts.ScriptTarget.ES2022, true);
  const interfaces = new Map<string, ts.InterfaceDeclaration>();
  const visit = (node: ts.Node): void => {
    if (ts.isInterfaceDeclaration(node)) interfaces.set(node.name.text, node);
    ts.forEachChild(node, visit);
  };
  visit(file);
  const all: string[] = [];
  const optional: string[] = [];
  const walk = (name: string, prefix: string): void => {
    const decl = interfaces.get(name);
    if (!decl) throw new Error(`sockwarden.d.ts declares no interface ${name}`);
    for (const member of decl.members) {
      if (!ts.isPropertySignature(member) || !ts.isIdentifier(member.name)) continue;
      const key = prefix + member.name.text;
      all.push(key);
      if (member.questionToken) optional.push(key);
      // A member typed by another interface of the module (Process | null, Namespace | null).
      const referenced: string[] = [];
      const find = (n: ts.Node): void => {
        if (ts.isTypeReferenceNode(n) && ts.isIdentifier(n.typeName) && interfaces.has(n.typeName.text)) referenced.push(n.typeName.text);
        ts.forEachChild(n, find);
      };
      if (member.type) find(member.type);
      for (const r of referenced) walk(r, `${key}.`);
    }
  };
  walk("Endpoint", "");
  return { all, optional };
}

const sorted = (xs: readonly string[]) => [...xs].sort();

describe("the rule-visible model", () => {
  const servers: net.Server[] = [];
  const sockets: net.Socket[] = [];
  let udp: dgram.Socket;
  let ports: Set<number>;
  let real: Endpoint[] = [];

  beforeAll(async () => {
    sandbox = await RuleSandbox.create(await compileRule(ECHO_RULE, "model-echo.ts"), {});

    const server = net.createServer();
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as net.AddressInfo).port;
    // Both ends: the accepted socket is this process's only once accept() has taken it.
    const accepted = new Promise<void>((resolve) => server.once("connection", (s) => (sockets.push(s), resolve())));
    const client = net.connect(port, "127.0.0.1");
    sockets.push(client);
    await Promise.all([accepted, new Promise<void>((resolve) => client.once("connect", resolve))]);
    udp = dgram.createSocket("udp4");
    await new Promise<void>((resolve) => udp.bind(0, "127.0.0.1", resolve));
    ports = new Set([port, client.localPort!, udp.address().port]);

    // As `run -N` reads them: every namespace, with processes.
    const engine = createEngine({ allNamespaces: true });
    try {
      const snapshot = engine.snapshot({ protocols: new Set(["tcp", "udp"]), families: new Set([4, 6]), withProcesses: true });
      real = snapshot.endpoints.filter((e) => e.localAddress === "127.0.0.1" && ports.has(e.localPort) && e.pids.includes(process.pid));
    } finally {
      engine.close();
    }
  });

  afterAll(async () => {
    sandbox?.dispose();
    for (const s of sockets) s.destroy();
    udp?.close();
    await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  });

  /** An endpoint with every part that can be null or absent filled in. */
  const full = (): Endpoint => ({
    ...real[0]!,
    process: { ...real[0]!.process!, unit: "nginx.service", container: { runtime: "kubernetes", id: "c0ffee", pod: "b5a1-pod" } },
    namespace: { inode: 4026532001, name: "blue", container: { runtime: "docker", id: "d0cker", pod: null } },
    createdAt: "2026-11-22T08:00:00.000Z",
    module: "Dnscache",
  });

  it("reads the sockets opened here, owned by this process, in a namespace", () => {
    // The listener, both ends of the connection and the UDP socket.
    expect(real.map((e) => `${e.protocol} ${e.state ?? "-"}`).sort()).toEqual(["tcp ESTABLISHED", "tcp ESTABLISHED", "tcp LISTEN", "udp -"]);
    for (const e of real) {
      expect(e.process?.pid).toBe(process.pid);
      expect(e.namespace).not.toBeNull();
    }
  });

  it("a rule sees every key list --json carries, in its order, with the same values", async () => {
    const endpoints = [...real, full()];
    const seen = await seenByRule(endpoints);
    const expected = endpoints.map((e) => ({ keys: paths(endpointToJson(e)), json: endpointJsonText(e) }));
    expect(seen.start).toEqual(expected);
    expect(seen.events).toEqual(expected);
    // What the filled-in endpoint adds is seen too: a container and a namespace by name.
    expect(seen.start.at(-1)!.keys).toEqual(expect.arrayContaining(["process.unit", "process.container.pod", "namespace.container.runtime", "module"]));
  });

  it("the declarations declare exactly those keys", () => {
    const declared = declaredPaths();
    const linux = { ...full() };
    delete linux.createdAt;
    delete linux.module;
    // With everything filled in, every declared key; Windows' two are the optional ones.
    expect(sorted(declared.all)).toEqual(sorted(paths(endpointToJson(full()))));
    expect(sorted(declared.all.filter((k) => !declared.optional.includes(k)))).toEqual(sorted(paths(endpointToJson(linux))));
    expect(sorted(declared.optional)).toEqual(["createdAt", "module"]);
    // A real endpoint's own keys, its process's included, are declared ones.
    for (const e of real) expect(declared.all).toEqual(expect.arrayContaining(paths(endpointToJson(e))));
  });
});
