// sqs_server.mjs - runs the fauxqs SQS emulator for the end-to-end tests.
//
//   node sqs_server.mjs PORT
//
// Prints "listening PORT" once it accepts requests; stops on SIGTERM.
//
// fauxqs 2.x imports node:sqlite (Node >= 22.5) for its optional on-disk
// persistence, which these tests never turn on. On older Node the import
// alone would abort start-up, so a module resolve hook stands in a stub
// that refuses to be used: state stays in memory, as the tests want.
import { isBuiltin, register } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const stub = "data:text/javascript," + encodeURIComponent(
  "export class DatabaseSync { constructor() { throw new Error('fauxqs persistence needs node:sqlite (Node >= 22.5)'); } }");
const hook = "data:text/javascript," + encodeURIComponent(`
  export async function resolve(spec, ctx, next) {
    if (spec === "node:sqlite") return { url: ${JSON.stringify(stub)}, shortCircuit: true };
    return next(spec, ctx);
  }`);
if (!isBuiltin("node:sqlite")) register(hook);

const here = dirname(fileURLToPath(import.meta.url));
const fauxqs = join(here, "..", "..", "node", "node_modules", "fauxqs", "dist", "app.js");
const { startFauxqs } = await import(pathToFileURL(fauxqs).href);

const port = Number(process.argv[2] || 4566);
const server = await startFauxqs({ port, host: "127.0.0.1", logger: false });
process.stdout.write(`listening ${port}\n`);
const stop = async () => { try { await server.stop(); } finally { process.exit(0); } };
process.on("SIGTERM", stop);
process.on("SIGINT", stop);

// --- optional SigV4 check ----------------------------------------------
//
//   node sqs_server.mjs PORT VERIFY_PORT KEY_ID SECRET [TOKEN]
//
// also listens on VERIFY_PORT as a proxy in front of the emulator that
// re-signs each request with the official AWS signer (@smithy/signature-v4)
// from the same date and signed headers, refuses it (403) unless the
// signatures match, and forwards it otherwise. fauxqs itself accepts any
// signature, so this is what shows Switchyard's requests would pass real
// SQS. GET /sigcheck on VERIFY_PORT returns {"verified": N, "rejected": M,
// "last_error": "...", "batches": [[ENTRIES, BYTES], ...]}: one pair per
// verified SendMessageBatch, its number of entries and their size as SQS
// counts it (bodies plus attribute names, types and values, in bytes).
if (process.argv[3]) {
  const http = await import("node:http");
  const crypto = await import("node:crypto");
  const { createRequire } = await import("node:module");
  const require = createRequire(join(here, "..", "..", "node", "package.json"));
  const { SignatureV4 } = require("@smithy/signature-v4");
  const [verifyPort, keyId, secret, token] = [Number(process.argv[3]), process.argv[4], process.argv[5], process.argv[6]];

  class Sha256 {
    constructor(secret) { this.h = secret ? crypto.createHmac("sha256", secret) : crypto.createHash("sha256"); }
    update(d) { this.h.update(typeof d === "string" ? Buffer.from(d) : d); }
    async digest() { return new Uint8Array(this.h.digest()); }
  }
  const stats = { verified: 0, rejected: 0, last_error: "", batches: [] };
  const sqsSize = (e) => {
    let n = Buffer.byteLength(e.MessageBody || "");
    for (const [name, a] of Object.entries(e.MessageAttributes || {}))
      n += Buffer.byteLength(name) + Buffer.byteLength(a.DataType || "") + Buffer.byteLength(a.StringValue || "");
    return n;
  };
  const record = (req, body) => {
    if (req.headers["x-amz-target"] !== "AmazonSQS.SendMessageBatch") return;
    try {
      const entries = JSON.parse(body.toString("utf8")).Entries || [];
      stats.batches.push([entries.length, entries.reduce((n, e) => n + sqsSize(e), 0)]);
    } catch { stats.batches.push([-1, 0]); }
  };
  const deny = (res, type, msg) => {
    stats.rejected++; stats.last_error = `${type}: ${msg}`;
    res.writeHead(403, { "content-type": "application/x-amz-json-1.0" });
    res.end(JSON.stringify({ __type: `com.amazon.coral.service#${type}`, message: msg }));
  };
  const check = async (req, body) => {
    const auth = req.headers["authorization"] || "";
    const m = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$/.exec(auth);
    if (!m) return ["IncompleteSignatureException", `bad Authorization header: ${auth.slice(0, 80)}`];
    const [, akid, , region, service, signed, signature] = m;
    if (akid !== keyId) return ["UnrecognizedClientException", `unknown access key ${akid}`];
    if (service !== "sqs") return ["InvalidSignatureException", `service ${service} is not sqs`];
    if ((req.headers["x-amz-security-token"] || undefined) !== token) return ["UnrecognizedClientException", "session token missing or wrong"];
    const amzDate = req.headers["x-amz-date"];
    if (!/^\d{8}T\d{6}Z$/.test(amzDate || "")) return ["IncompleteSignatureException", "no X-Amz-Date"];
    const names = signed.split(";");
    for (const need of ["host", "x-amz-date", "x-amz-target", "content-type"])
      if (!names.includes(need)) return ["InvalidSignatureException", `header ${need} is not signed`];
    const headers = {};
    for (const n of names) headers[n] = req.headers[n];
    const date = new Date(`${amzDate.slice(0, 4)}-${amzDate.slice(4, 6)}-${amzDate.slice(6, 8)}T${amzDate.slice(9, 11)}:${amzDate.slice(11, 13)}:${amzDate.slice(13, 15)}Z`);
    const signer = new SignatureV4({ credentials: { accessKeyId: keyId, secretAccessKey: secret, sessionToken: token },
      region, service: "sqs", sha256: Sha256, applyChecksum: false });
    const [hostname, port] = req.headers.host.split(":");
    const out = await signer.sign({ method: req.method, protocol: "http:", hostname, port: port ? Number(port) : undefined,
      path: req.url, query: {}, headers, body }, { signingDate: date, signableHeaders: new Set(names) });
    const want = /Signature=([0-9a-f]{64})/.exec(out.headers.authorization)[1];
    if (want !== signature) return ["InvalidSignatureException", "signature does not match"];
    return null;
  };
  http.createServer((req, res) => {
    if (req.method === "GET" && req.url === "/sigcheck") {
      res.writeHead(200, { "content-type": "application/json" });
      return res.end(JSON.stringify(stats));
    }
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", async () => {
      const body = Buffer.concat(chunks);
      let bad;
      try { bad = await check(req, body); } catch (e) { bad = ["InternalFailure", String(e)]; }
      if (bad) return deny(res, bad[0], bad[1]);
      stats.verified++;
      record(req, body);
      const fwd = http.request({ host: "127.0.0.1", port, method: req.method, path: req.url,
        headers: { ...req.headers, host: `127.0.0.1:${port}` } }, (up) => {
        res.writeHead(up.statusCode, up.headers);
        up.pipe(res);
      });
      fwd.on("error", (e) => { res.writeHead(502); res.end(String(e)); });
      fwd.end(body);
    });
  }).listen(verifyPort, "127.0.0.1", () => process.stdout.write(`verifying ${verifyPort}\n`));
}
