/**
 * An OTLP/HTTP logs and webhook receiver for the daemon tests, run with Bun inside the test's
 * namespace: answers POSTs on 127.0.0.1:PORT and prints one line per record received
 * ("record <json>"): for /v1/logs each OTLP log record, for any other path each element of the
 * JSON array. A body that is not what OTLP/HTTP JSON or the webhook send is answered 400 and
 * printed as "bad <reason>". Exits when stdin closes or after 120 s.
 */
const port = Number(process.argv[2]);

function otlpRecords(body: any): unknown[] | string {
  if (!body || !Array.isArray(body.resourceLogs)) return "no resourceLogs";
  const out: unknown[] = [];
  for (const rl of body.resourceLogs) {
    const attrs = Object.fromEntries((rl.resource?.attributes ?? []).map((a: any) => [a.key, a.value?.stringValue]));
    if (attrs["service.name"] !== "sockwarden" || typeof attrs["host.name"] !== "string") return "resource without service.name=sockwarden and host.name";
    for (const sl of rl.scopeLogs ?? []) {
      for (const r of sl.logRecords ?? []) {
        if (typeof r.timeUnixNano !== "string" || !/^\d+$/.test(r.timeUnixNano)) return "timeUnixNano is not a decimal string";
        if (typeof r.severityNumber !== "number" || typeof r.body?.stringValue !== "string") return "no severityNumber or body";
        out.push(r);
      }
    }
  }
  return out;
}

const server = Bun.serve({
  hostname: "127.0.0.1",
  port,
  async fetch(req) {
    let body: unknown;
    try {
      body = await req.json();
    } catch {
      console.log("bad body is not JSON");
      return new Response("not JSON", { status: 400 });
    }
    const records = new URL(req.url).pathname === "/v1/logs" ? otlpRecords(body) : Array.isArray(body) ? body : "not an array";
    if (typeof records === "string") {
      console.log(`bad ${records}`);
      return new Response(records, { status: 400 });
    }
    for (const r of records) console.log(`record ${JSON.stringify(r)}`);
    return Response.json({});
  },
});
console.log("ready");
const timer = setTimeout(() => process.exit(0), 120_000);
process.stdin.on("end", () => {
  clearTimeout(timer);
  server.stop(true);
  process.exit(0);
});
process.stdin.resume();
