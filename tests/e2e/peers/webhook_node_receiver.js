// A webhook receiver that verifies with the official `standardwebhooks` npm
// package (tests/node/node_modules, run with NODE_PATH pointing there).
//
//   node webhook_node_receiver.js '{"secrets": ["whsec_..."], "public_keys": ["whpk_..."],
//                                   "answers": {"/path": [500, 200]}}'
//
// answers: per path, the statuses of its first requests in turn; then 200.
// Listens on 127.0.0.1 (a free port) and prints one JSON line per event on
// stdout, the first being {"listening": PORT}. For each request:
//   {"path", "style": "svix" | "webhook" | null, "id", "timestamp",
//    "signatures": [...], "results": [per secret: "ok" or the error],
//    "v1a": [per public key: "ok" or "no match"], "body", "status"}
// The official class reads webhook-* headers only; a Svix-style request
// (svix-* headers) is handed to it under the webhook-* names, which is what
// the Svix libraries themselves do.
"use strict";

const http = require("http");
const crypto = require("crypto");
const { Webhook } = require("standardwebhooks");

const conf = JSON.parse(process.argv[2] || "{}");
const secrets = conf.secrets || [];
const answers = conf.answers || {};
const publicKeys = (conf.public_keys || []).map((k) => {
  const raw = Buffer.from(k.replace(/^whpk_/, ""), "base64");
  // SubjectPublicKeyInfo for a raw ed25519 key: fixed 12-byte prefix.
  const der = Buffer.concat([Buffer.from("302a300506032b6570032100", "hex"), raw]);
  return crypto.createPublicKey({ key: der, format: "der", type: "spki" });
});

function styleOf(h) {
  if (h["svix-id"] !== undefined) return "svix";
  if (h["webhook-id"] !== undefined) return "webhook";
  return null;
}

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    const body = Buffer.concat(chunks).toString("utf8");
    const style = styleOf(req.headers);
    const h = style
      ? {
          "webhook-id": req.headers[`${style}-id`],
          "webhook-timestamp": req.headers[`${style}-timestamp`],
          "webhook-signature": req.headers[`${style}-signature`],
        }
      : {};
    const results = secrets.map((s) => {
      try {
        new Webhook(s).verify(body, h);
        return "ok";
      } catch (e) {
        return String(e.message || e);
      }
    });
    const sigs = (h["webhook-signature"] || "").split(" ");
    const content = Buffer.from(`${h["webhook-id"]}.${h["webhook-timestamp"]}.${body}`);
    const v1a = publicKeys.map((pk) => {
      const ok = sigs.some((s) => {
        const [version, sig] = s.split(",");
        return version === "v1a" && sig && crypto.verify(null, content, pk, Buffer.from(sig, "base64"));
      });
      return ok ? "ok" : "no match";
    });
    const line = {
      path: req.url,
      style,
      id: h["webhook-id"] || null,
      timestamp: h["webhook-timestamp"] || null,
      signatures: sigs.filter((s) => s),
      results,
      v1a,
      body,
      status: (answers[req.url] || []).shift() || 200,
    };
    process.stdout.write(JSON.stringify(line) + "\n");
    res.writeHead(line.status, { "Content-Type": "text/plain" });
    res.end(line.status < 300 ? "ok" : "no");
  });
});

server.listen(0, "127.0.0.1", () => {
  process.stdout.write(JSON.stringify({ listening: server.address().port }) + "\n");
});
process.on("SIGTERM", () => server.close(() => process.exit(0)));
