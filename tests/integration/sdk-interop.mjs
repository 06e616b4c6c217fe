// Interop between knit's HTTP binding (through ce_http_tool) and the npm
// `cloudevents` SDK (v10), a CloudEvents implementation nobody here wrote.
// Run by 0170-sdk-interop.sh from a directory where the package is
// installed:  node sdk-interop.mjs CE_HTTP_TOOL WORKDIR
//
// 1. SDK → knit: HTTP.binary / HTTP.structured messages (and a hand-built
//    batch, the SDK has no batch encoder) are decoded by our tool, which
//    prints the JSON format; every field is compared with the SDK event.
// 2. knit → SDK: events given in the JSON format are encoded by our tool in
//    binary and structured mode; HTTP.toEvent must accept them and give
//    back the same fields.
// Known difference (spec issue #1397): the SDK neither percent-encodes nor
// decodes header values. Its raw non-ASCII values need our lenient mode,
// and values we percent-encode reach it still encoded. Both are checked
// explicitly below so a change on either side is noticed.
import { CloudEvent, HTTP } from "cloudevents";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { isDeepStrictEqual } from "node:util";

const [tool, dir] = process.argv.slice(2);
let checks = 0;
let failures = 0;

function check(cond, what, got, want) {
  checks++;
  if (!cond) {
    failures++;
    console.error(`FAIL: ${what}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
  }
}

function eq(got, want, what) {
  check(isDeepStrictEqual(got, want), what, got, want);
}

function writeBody(file, body) {
  if (body === undefined || body === null) fs.writeFileSync(file, "");
  else if (typeof body === "string") fs.writeFileSync(file, body, "utf8");
  else fs.writeFileSync(file, Buffer.from(body.buffer, body.byteOffset, body.byteLength));
}

// Runs `ce_http_tool decode` on an SDK message; returns {ok, out, err}.
function knitDecode(msg, lenient) {
  const h = path.join(dir, "in-headers.json");
  const b = path.join(dir, "in-body.bin");
  fs.writeFileSync(h, JSON.stringify(msg.headers));
  writeBody(b, msg.body);
  const args = ["decode", ...(lenient ? ["--lenient"] : []), h, b];
  try {
    const out = execFileSync(tool, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    return { ok: true, out: JSON.parse(out) };
  } catch (e) {
    return { ok: false, err: String(e.stderr || e.message) };
  }
}

// Runs `ce_http_tool encode MODE` on a JSON-format event; returns the
// message as the SDK expects it ({headers, body}).
function knitEncode(eventJson, mode, binaryBody) {
  const e = path.join(dir, "event.json");
  const h = path.join(dir, "out-headers.json");
  const b = path.join(dir, "out-body.bin");
  fs.writeFileSync(e, JSON.stringify(eventJson));
  execFileSync(tool, ["encode", mode, e, h, b], { stdio: ["ignore", "inherit", "inherit"] });
  const headers = JSON.parse(fs.readFileSync(h, "utf8"));
  const raw = fs.readFileSync(b);
  return { headers, body: binaryBody ? raw : raw.toString("utf8") };
}

const sameInstant = (a, b) => Date.parse(a) === Date.parse(b);

// ---------------------------------------------------------------- SDK → knit
const bytes = new Uint8Array([0, 1, 2, 127, 128, 255]);
const sdkCases = [
  { name: "json object", ev: { datacontenttype: "application/json", data: { a: 1, b: [true, null, "x"] } } },
  { name: "text", ev: { datacontenttype: "text/plain", data: "hello world" } },
  { name: "binary", ev: { datacontenttype: "application/octet-stream", data: bytes } },
  { name: "no data", ev: {} },
  { name: "raw non-ASCII subject", ev: { subject: "café € 😀" }, lenient: true },
];

for (const c of sdkCases) {
  const ev = new CloudEvent({
    type: "com.example.interop", source: "/sdk/js", id: `sdk-${c.name.replace(/ /g, "-")}`,
    subject: "interop", partitionkey: "pk-1", ...c.ev,
  });
  for (const mode of ["binary", "structured"]) {
    const what = `SDK ${mode} '${c.name}'`;
    const msg = HTTP[mode](ev);
    const lenient = c.lenient && mode === "binary";
    const r = knitDecode(msg, lenient);
    check(r.ok, `${what}: knit decodes it`, r.err, "success");
    if (!r.ok) continue;
    const got = r.out;
    for (const k of ["specversion", "id", "source", "type", "subject", "partitionkey"])
      eq(got[k], ev[k], `${what}: ${k}`);
    check(sameInstant(got.time, ev.time), `${what}: time`, got.time, ev.time);
    if (c.ev.datacontenttype) eq(got.datacontenttype, ev.datacontenttype, `${what}: datacontenttype`);
    if (c.ev.data === undefined) {
      eq(got.data, undefined, `${what}: no data`);
      eq(got.data_base64, undefined, `${what}: no data_base64`);
    } else if (c.ev.data instanceof Uint8Array) {
      eq(got.data_base64, Buffer.from(bytes).toString("base64"), `${what}: data_base64`);
    } else {
      eq(got.data, c.ev.data, `${what}: data`);
    }
    if (c.lenient && mode === "binary") {
      // the SDK sent the subject raw; strict decoding must refuse it
      const strict = knitDecode(msg, false);
      check(!strict.ok && /must be percent-encoded/.test(strict.err),
            `${what}: strict decoding refuses raw non-ASCII`, strict.err, "percent-encoding error");
    }
  }
}

// Batch: built by hand as the SDK's own test does.
{
  const evs = [1, 2, 3].map((i) => new CloudEvent({
    type: "com.example.batch", source: "/sdk/js", id: `b-${i}`, data: { i },
  }));
  const r = knitDecode({
    headers: { "content-type": "application/cloudevents-batch+json" },
    body: JSON.stringify(evs),
  });
  check(r.ok, "SDK batch: knit decodes it", r.err, "success");
  if (r.ok) {
    eq(r.out.length, 3, "SDK batch: count");
    r.out.forEach((e, i) => {
      eq(e.id, `b-${i + 1}`, `SDK batch [${i}] id`);
      eq(e.data, { i: i + 1 }, `SDK batch [${i}] data`);
    });
  }
}

// ---------------------------------------------------------------- knit → SDK
const base = {
  specversion: "1.0", source: "/knit/interop", type: "com.example.knit",
  time: "2024-05-01T12:34:56.789Z", subject: "plain-subject", myext: "v1",
};
const knitCases = [
  { name: "json object", ev: { datacontenttype: "application/json", data: { x: [1, 2], y: "z" } } },
  { name: "json, no datacontenttype", ev: { data: { a: 1 } }, wantCt: "application/json" },
  { name: "text", ev: { datacontenttype: "text/plain; charset=utf-8", data: "hello" } },
  { name: "binary", ev: { datacontenttype: "application/octet-stream", data_base64: "AAECf4D/" }, binary: true },
  { name: "no data", ev: {} },
  { name: "non-ASCII subject", ev: { subject: "Euro € 😀" }, encodedSubject: "Euro%20%E2%82%AC%20%F0%9F%98%80" },
];

for (const c of knitCases) {
  const src = { ...base, id: `knit-${c.name.replace(/[ ,]+/g, "-")}`, ...c.ev };
  for (const mode of ["binary", "structured"]) {
    const what = `knit ${mode} '${c.name}'`;
    const msg = knitEncode(src, mode, c.binary && mode === "binary");
    if (mode === "structured")
      eq(msg.headers["Content-Type"], "application/cloudevents+json; charset=utf-8", `${what}: Content-Type`);
    let ev;
    try {
      ev = HTTP.toEvent(msg);
    } catch (e) {
      check(false, `${what}: SDK accepts it`, String(e), "an event");
      continue;
    }
    check(!Array.isArray(ev), `${what}: one event`, typeof ev, "object");
    for (const k of ["specversion", "id", "source", "type", "myext"])
      eq(ev[k], src[k], `${what}: ${k}`);
    check(sameInstant(ev.time, src.time), `${what}: time`, ev.time, src.time);
    if (c.encodedSubject && mode === "binary")
      eq(ev.subject, c.encodedSubject, `${what}: subject arrives percent-encoded (SDK does not decode)`);
    else
      eq(ev.subject, src.subject, `${what}: subject`);
    // an absent datacontenttype stays absent in the JSON format; binary
    // mode announces the JSON format's default (application/json)
    if (src.datacontenttype || (c.wantCt && mode === "binary"))
      eq(ev.datacontenttype, src.datacontenttype || c.wantCt, `${what}: datacontenttype`);
    if (src.data_base64) {
      const got = mode === "binary" ? Buffer.from(ev.data).toString("base64") : ev.data_base64;
      eq(got, src.data_base64, `${what}: binary data`);
    } else if (src.data === undefined) {
      // an empty binary-mode body comes back from the SDK as ""
      const none = ev.data === undefined || ev.data === null ||
                   (mode === "binary" && ev.data === "");
      check(none, `${what}: no data`, ev.data, undefined);
    } else {
      eq(ev.data, src.data, `${what}: data`);
    }
  }
}

console.log(`sdk-interop: ${checks - failures}/${checks} checks passed`);
process.exit(failures ? 1 : 0);
