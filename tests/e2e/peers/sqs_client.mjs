// sqs_client.mjs - the official AWS SQS client, for the end-to-end tests.
//
//   node sqs_client.mjs ENDPOINT create NAME [ATTRIBUTES_JSON]   -> prints the queue URL
//   node sqs_client.mjs ENDPOINT drain QUEUE_URL COUNT SECONDS   -> JSON lines, one per message
//   node sqs_client.mjs ENDPOINT bench QUEUE_URL COUNT SIZE PARALLEL
//       the emulator's own ceiling with the official client: COUNT messages
//       of SIZE bytes in SendMessageBatch requests of ten, PARALLEL requests
//       at a time; prints {"count":N,"seconds":S,"per_second":R}
//
// drain receives (and deletes) until COUNT messages arrived or SECONDS
// passed with nothing new, then prints each message as
// {"body": ..., "attributes": {...}, "group": ..., "dedup": ..., "receive_count": N}
// followed by a last line {"done": true, "count": N}.
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(join(here, "..", "..", "node", "package.json"));
const { SQSClient, CreateQueueCommand, ReceiveMessageCommand, DeleteMessageBatchCommand,
  SendMessageBatchCommand } = require("@aws-sdk/client-sqs");

const [endpoint, cmd, ...args] = process.argv.slice(2);
const sqs = new SQSClient({ endpoint, region: "us-east-1",
  credentials: { accessKeyId: "test", secretAccessKey: "test" } });

if (cmd === "create") {
  const [name, attrs] = args;
  const r = await sqs.send(new CreateQueueCommand({ QueueName: name, Attributes: attrs ? JSON.parse(attrs) : undefined }));
  process.stdout.write(r.QueueUrl + "\n");
} else if (cmd === "drain") {
  const [url, count, seconds] = [args[0], Number(args[1]), Number(args[2])];
  let got = 0, idleSince = Date.now();
  const lines = [];
  while (got < count && Date.now() - idleSince < seconds * 1000) {
    const r = await sqs.send(new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10,
      WaitTimeSeconds: 1, VisibilityTimeout: 300, MessageAttributeNames: ["All"], MessageSystemAttributeNames: ["All"] }));
    const msgs = r.Messages || [];
    if (!msgs.length) continue;
    idleSince = Date.now();
    for (const m of msgs) {
      const attrs = {};
      for (const [k, v] of Object.entries(m.MessageAttributes || {})) attrs[k] = { type: v.DataType, value: v.StringValue };
      const sys = m.Attributes || {};
      lines.push(JSON.stringify({ body: m.Body, attributes: attrs, group: sys.MessageGroupId ?? null,
        dedup: sys.MessageDeduplicationId ?? null, receive_count: Number(sys.ApproximateReceiveCount || 0) }));
    }
    got += msgs.length;
    await sqs.send(new DeleteMessageBatchCommand({ QueueUrl: url,
      Entries: msgs.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle })) }));
  }
  lines.push(JSON.stringify({ done: true, count: got }));
  process.stdout.write(lines.join("\n") + "\n");
} else if (cmd === "bench") {
  const [url, count, size, parallel] = [args[0], Number(args[1]), Number(args[2]), Number(args[3])];
  const body = "x".repeat(size);
  let next = 0;
  const t0 = process.hrtime.bigint();
  const worker = async () => {
    while (next < count) {
      const n = Math.min(10, count - next);
      next += n;
      const Entries = Array.from({ length: n }, (_, i) => ({ Id: String(i), MessageBody: body,
        MessageAttributes: { event_type: { DataType: "String", StringValue: "bench.ceiling" } } }));
      const r = await sqs.send(new SendMessageBatchCommand({ QueueUrl: url, Entries }));
      if (r.Failed && r.Failed.length) throw new Error(JSON.stringify(r.Failed[0]));
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  process.stdout.write(JSON.stringify({ count, seconds: +s.toFixed(3), per_second: Math.round(count / s) }) + "\n");
} else {
  process.stderr.write(`unknown command ${cmd}\n`);
  process.exit(2);
}
