// The official `openai` npm client against codex-proxy running the real `codex app-server`, whose
// model is the scripted stub (markers like [[reply:…]] in the prompt say what it answers).
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

const require = createRequire(import.meta.url);
const sourceDir = process.env.CXP_SOURCE_DIR ?? path.resolve(import.meta.dirname, "../..");
const binDir = process.env.CXP_BIN_DIR ?? path.join(sourceDir, "build/bin");
const OpenAI = require(path.join(sourceDir, "tests/node/node_modules/openai")).default;

const processes = [];
after(() => processes.forEach((p) => p.kill("SIGKILL")));

// Resolves with the first JSON line of `child`'s stdout that satisfies `match`.
function awaitLine(child, what, match) {
  return new Promise((resolve, reject) => {
    let buffered = "";
    const timer = setTimeout(() => reject(new Error(`no ${what} line`)), 15000);
    child.stdout.on("data", (data) => {
      buffered += data;
      for (const line of buffered.split("\n")) {
        try {
          const event = JSON.parse(line);
          if (match(event)) {
            clearTimeout(timer);
            resolve(event);
          }
        } catch {}
      }
    });
    child.on("exit", (code) => reject(new Error(`${what}: process exited with ${code}`)));
  });
}

// The scripted model (tests/model-stub) in place of the OpenAI API; it checks the model key.
const MODEL_KEY = "sk-stub-model-key-for-node-0123456789";
async function startModelStub() {
  const stub = spawn("python3", [path.join(sourceDir, "tests/model-stub/model_stub.py"), "--api-key", MODEL_KEY], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  processes.push(stub);
  return (await awaitLine(stub, "model stub listening", (e) => e.event === "listening")).base_url;
}

// codex-proxy with the real `codex app-server` as its worker, pointed at the stub.
async function startProxy(env) {
  const codexHome = fs.mkdtempSync(path.join(os.tmpdir(), "cxp-node-codex-home-"));
  after(() => fs.rmSync(codexHome, { recursive: true, force: true }));
  const proxy = spawn(path.join(binDir, "codex-proxy"), [], {
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      PORT: "0",
      PROXY_OPS_PORT: "0",
      CODEX_BIN: path.join(sourceDir, "tests/node/node_modules/.bin/codex"),
      CODEX_HOME: codexHome,
      WORKER_PROVIDER_BASE_URL: modelBaseUrl,
      WORKER_PROVIDER_ENV_KEY: "STUB_MODEL_API_KEY",
      STUB_MODEL_API_KEY: MODEL_KEY,
      WORKER_CONFIG_OVERRIDES: "model_providers.codexproxy.request_max_retries=0\nmodel_providers.codexproxy.stream_max_retries=0",
      WORKER_HANDSHAKE_TIMEOUT_MS: "30000",
      ...env,
    },
    stdio: ["ignore", "pipe", "inherit"],
    detached: true,
  });
  processes.push({ kill: (signal) => { try { process.kill(-proxy.pid, signal); } catch {} } });
  const listening = await awaitLine(proxy, "codex-proxy listening", (e) => e.event === "listening");
  const base = `http://127.0.0.1:${listening.port}`;
  for (let i = 0; i < 1200; i++) {
    const res = await fetch(`http://127.0.0.1:${listening.ops_port}/readyz`).catch(() => null);
    if (res?.status === 200) break;
    await new Promise((r) => setTimeout(r, 25));
  }
  return base;
}

const modelBaseUrl = await startModelStub();
const KEY = "sk-proxy-test-0123456789";
const base = await startProxy({ PROXY_API_KEY: KEY });
const REPLY = "[[reply:Hello there from the worker]]";
const client = new OpenAI({ apiKey: KEY, baseURL: `${base}/v1`, maxRetries: 0 });

test("non-streaming chat completion through the SDK", async () => {
  const completion = await client.chat.completions.create({
    model: "gpt-5",
    messages: [{ role: "system", content: "be brief" }, { role: "user", content: `hi ${REPLY}` }],
  });
  assert.equal(completion.object, "chat.completion");
  assert.equal(completion.choices[0].message.role, "assistant");
  assert.equal(completion.choices[0].message.content, "Hello there from the worker");
  assert.equal(completion.choices[0].finish_reason, "stop");
  assert.ok(completion.usage.total_tokens > 0);
});

test("streaming chat completion with usage through the SDK", async () => {
  const stream = await client.chat.completions.create({
    model: "gpt-5",
    messages: [{ role: "user", content: `hi ${REPLY}` }],
    stream: true,
    stream_options: { include_usage: true },
  });
  let text = "";
  let finish = null;
  let usage = null;
  let first = true;
  for await (const chunk of stream) {
    if (first) {
      assert.equal(chunk.choices[0].delta.role, "assistant");
      first = false;
    }
    if (chunk.choices.length > 0) {
      text += chunk.choices[0].delta.content ?? "";
      finish = chunk.choices[0].finish_reason ?? finish;
    }
    if (chunk.usage) usage = chunk.usage;
  }
  assert.equal(text, "Hello there from the worker");
  assert.equal(finish, "stop");
  assert.equal(usage.completion_tokens, 5);
});

test("models list through the SDK", async () => {
  const models = [];
  for await (const model of client.models.list()) models.push(model.id);
  assert.deepEqual(models, ["gpt-5"]);
});

test("errors surface as the SDK's typed errors", async () => {
  const wrongKey = new OpenAI({ apiKey: "sk-wrong-key-000000000", baseURL: `${base}/v1`, maxRetries: 0 });
  await assert.rejects(
    wrongKey.chat.completions.create({ model: "gpt-5", messages: [{ role: "user", content: "x" }] }),
    (err) => err instanceof OpenAI.AuthenticationError && err.status === 401,
  );
  await assert.rejects(
    client.chat.completions.create({ model: "nope", messages: [{ role: "user", content: "x" }] }),
    (err) => err instanceof OpenAI.NotFoundError && /nope/.test(err.message),
  );
  await assert.rejects(
    client.chat.completions.create({ model: "gpt-5", messages: [] }),
    (err) => err instanceof OpenAI.BadRequestError && err.param === "messages",
  );
});

test("native tool calls through the SDK: JSON, streamed, parallel, and the round trip", async () => {
  const tools = [
    { type: "function", function: { name: "get_weather", parameters: { type: "object", properties: { city: { type: "string" } } } } },
    { type: "function", function: { name: "get_time", parameters: { type: "object", properties: {} } } },
  ];
  const ask = 'weather? [[call:get_weather:{"city":"Oslo"}]]';
  const completion = await client.chat.completions.create({ model: "gpt-5", messages: [{ role: "user", content: ask }], tools });
  assert.equal(completion.choices[0].finish_reason, "tool_calls");
  const call = completion.choices[0].message.tool_calls[0];
  assert.equal(call.function.name, "get_weather");
  assert.deepEqual(JSON.parse(call.function.arguments), { city: "Oslo" });

  const runner = client.chat.completions.stream({ model: "gpt-5", messages: [{ role: "user", content: ask }], tools });
  const final = await runner.finalChatCompletion();
  assert.equal(final.choices[0].finish_reason, "tool_calls");
  assert.deepEqual(JSON.parse(final.choices[0].message.tool_calls[0].function.arguments), { city: "Oslo" });

  const both = await client.chat.completions.create({
    model: "gpt-5", tools, messages: [{ role: "user", content: 'both [[call:get_weather:{"city":"Oslo"}]][[call:get_time:{}]]' }],
  });
  assert.deepEqual(both.choices[0].message.tool_calls.map((c) => c.function.name), ["get_weather", "get_time"]);

  const answer = await client.chat.completions.create({
    model: "gpt-5", tools,
    messages: [{ role: "user", content: ask }, completion.choices[0].message,
               { role: "tool", tool_call_id: call.id, content: "cloudy, 7 C" }],
  });
  assert.equal(answer.choices[0].message.content, "The tool said: cloudy, 7 C");
});

test("responses.create through the SDK: JSON, streamed, and a function call", async () => {
  const response = await client.responses.create({ model: "gpt-5", instructions: "be brief", input: "hi [[reply:Hello from responses]]" });
  assert.equal(response.status, "completed");
  assert.equal(response.output_text, "Hello from responses");
  assert.ok(response.usage.total_tokens > 0);

  const stream = client.responses.stream({ model: "gpt-5", input: "[[reply:one two three]]" });
  let deltas = "";
  stream.on("response.output_text.delta", (event) => { deltas += event.delta; });
  const streamed = await stream.finalResponse();
  assert.equal(deltas, "one two three");
  assert.equal(streamed.output_text, "one two three");

  const tools = [{ type: "function", name: "get_weather", parameters: { type: "object", properties: { city: { type: "string" } } }, strict: false }];
  const withCall = await client.responses.create({ model: "gpt-5", tools, input: 'weather? [[call:get_weather:{"city":"Rome"}]]' });
  const [call] = withCall.output.filter((item) => item.type === "function_call");
  assert.equal(call.name, "get_weather");
  assert.deepEqual(JSON.parse(call.arguments), { city: "Rome" });
  const followUp = await client.responses.create({
    model: "gpt-5", tools,
    input: [{ role: "user", content: 'weather? [[call:get_weather:{"city":"Rome"}]]' }, call,
            { type: "function_call_output", call_id: call.call_id, output: "sunny" }],
  });
  assert.equal(followUp.output_text, "The tool said: sunny");
  await assert.rejects(
    client.responses.create({ model: "gpt-5", input: "x", previous_response_id: "resp_x" }),
    (err) => err instanceof OpenAI.BadRequestError && err.param === "previous_response_id",
  );
});

test("a model failure surfaces as the SDK's typed 502 error with the provider's reason", async () => {
  await assert.rejects(
    client.chat.completions.create({ model: "gpt-5", messages: [{ role: "user", content: "[[fail:server_error:model on fire]]" }] }),
    (err) => err instanceof OpenAI.InternalServerError && err.status === 502 && /model on fire/.test(err.message),
  );
  const stream = await client.chat.completions.create({
    model: "gpt-5", stream: true, messages: [{ role: "user", content: "[[disconnect]][[slow:20]][[reply:a b c d e f]]" }],
  });
  await assert.rejects(async () => { for await (const _ of stream) {} }, (err) => /stream|model/i.test(err.message));
});

test("structured outputs with the SDK's zod helpers: chat and responses, JSON and streamed", async () => {
  const { zodResponseFormat, zodTextFormat } = require(path.join(sourceDir, "tests/node/node_modules/openai/helpers/zod"));
  const { z } = require(path.join(sourceDir, "tests/node/node_modules/zod"));
  const Weather = z.object({ city: z.string(), celsius: z.number(), sky: z.enum(["clear", "cloudy"]), note: z.string().nullable() });
  const messages = [{ role: "user", content: "weather in Oslo" }];
  const parsed = await client.chat.completions.parse({ model: "gpt-5", messages, response_format: zodResponseFormat(Weather, "weather") });
  assert.deepEqual(Object.keys(parsed.choices[0].message.parsed).sort(), ["celsius", "city", "note", "sky"]);
  assert.equal(parsed.choices[0].message.refusal, null);
  const runner = client.chat.completions.stream({ model: "gpt-5", messages, response_format: zodResponseFormat(Weather, "weather") });
  const streamed = await runner.finalChatCompletion();
  assert.equal(Weather.safeParse(streamed.choices[0].message.parsed).success, true);

  const response = await client.responses.parse({ model: "gpt-5", input: "weather", text: { format: zodTextFormat(Weather, "weather") } });
  assert.equal(Weather.safeParse(response.output_parsed).success, true);
  const stream = client.responses.stream({ model: "gpt-5", input: "weather", text: { format: zodTextFormat(Weather, "weather") } });
  const final = await stream.finalResponse();
  assert.equal(Weather.safeParse(final.output_parsed).success, true);

  // A schema strict mode cannot enforce is the SDK's BadRequestError naming the field.
  await assert.rejects(
    client.chat.completions.create({ model: "gpt-5", messages, response_format: { type: "json_schema", json_schema: {
      name: "loose", schema: { type: "object", properties: { a: { type: "string" } } } } } }),
    (err) => err instanceof OpenAI.BadRequestError && err.param === "response_format.json_schema.schema",
  );
});
