// The official `openai` npm client against a real codex-proxy + codex-fake-worker.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import path from "node:path";

const require = createRequire(import.meta.url);
const sourceDir = process.env.CXP_SOURCE_DIR ?? path.resolve(import.meta.dirname, "../..");
const binDir = process.env.CXP_BIN_DIR ?? path.join(sourceDir, "build/bin");
const OpenAI = require(path.join(sourceDir, "tests/node/node_modules/openai")).default;

const processes = [];
after(() => processes.forEach((p) => p.kill("SIGKILL")));

async function startProxy(env) {
  const proxy = spawn(path.join(binDir, "codex-proxy"), [], {
    env: { PATH: process.env.PATH, PORT: "0", CODEX_BIN: path.join(binDir, "codex-fake-worker"), ...env },
    stdio: ["ignore", "pipe", "inherit"],
  });
  processes.push(proxy);
  const port = await new Promise((resolve, reject) => {
    let buffered = "";
    const timer = setTimeout(() => reject(new Error("codex-proxy did not log `listening`")), 10000);
    proxy.stdout.on("data", (data) => {
      buffered += data;
      for (const line of buffered.split("\n")) {
        try {
          const event = JSON.parse(line);
          if (event.event === "listening") {
            clearTimeout(timer);
            resolve(event.port);
          }
        } catch {}
      }
    });
    proxy.on("exit", (code) => reject(new Error(`codex-proxy exited with ${code}`)));
  });
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 200; i++) {
    const res = await fetch(`${base}/readyz`).catch(() => null);
    if (res?.status === 200) break;
    await new Promise((r) => setTimeout(r, 25));
  }
  return base;
}

const KEY = "sk-proxy-test-0123456789";
const base = await startProxy({ PROXY_API_KEY: KEY, FAKE_CODEX_REPLY: "Hello there from the worker" });
const client = new OpenAI({ apiKey: KEY, baseURL: `${base}/v1`, maxRetries: 0 });

test("non-streaming chat completion through the SDK", async () => {
  const completion = await client.chat.completions.create({
    model: "gpt-5",
    messages: [{ role: "system", content: "be brief" }, { role: "user", content: "hi" }],
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
    messages: [{ role: "user", content: "hi" }],
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

test("tool calls through the SDK, streamed and not", async () => {
  const toolBase = await startProxy({
    FAKE_CODEX_REPLY: 'Let me look. <tool_call>{"name": "get_weather", "arguments": {"city": "Oslo"}}</tool_call>',
  });
  const tc = new OpenAI({ apiKey: "unused", baseURL: `${toolBase}/v1`, maxRetries: 0 });
  const tools = [{ type: "function", function: { name: "get_weather", parameters: { type: "object", properties: { city: { type: "string" } } } } }];
  const completion = await tc.chat.completions.create({ model: "gpt-5", messages: [{ role: "user", content: "weather?" }], tools });
  assert.equal(completion.choices[0].finish_reason, "tool_calls");
  const call = completion.choices[0].message.tool_calls[0];
  assert.equal(call.function.name, "get_weather");
  assert.deepEqual(JSON.parse(call.function.arguments), { city: "Oslo" });

  const runner = tc.chat.completions.stream({ model: "gpt-5", messages: [{ role: "user", content: "weather?" }], tools });
  const final = await runner.finalChatCompletion();
  assert.equal(final.choices[0].finish_reason, "tool_calls");
  assert.deepEqual(JSON.parse(final.choices[0].message.tool_calls[0].function.arguments), { city: "Oslo" });
  assert.ok(!(final.choices[0].message.content ?? "").includes("<tool_call"));
});
