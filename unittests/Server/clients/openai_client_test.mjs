// The official openai npm client against `lumen-jit serve`:
//   node openai_client_test.mjs BASE_URL API_KEY
// Chat (whole and streamed), completions, models, logprobs, seeds, errors,
// the API key, and a stream the client aborts. Exits non-zero on the first
// failed check.
import OpenAI from "openai";
import assert from "node:assert/strict";

const [base, key] = process.argv.slice(2);
const client = new OpenAI({ baseURL: base + "/v1", apiKey: key, maxRetries: 0, timeout: 120000 });
const messages = [{ role: "user", content: "Write a haiku about the sea." }];
let checks = 0;
const check = async (name, fn) => {
  await fn();
  checks++;
  console.log("ok", name);
};

await check("models.list", async () => {
  const models = await client.models.list();
  assert.equal(models.data.length, 1);
  assert.equal(models.data[0].id, "tiny");
  assert.equal(models.data[0].object, "model");
});

let whole;
await check("chat, whole", async () => {
  const r = await client.chat.completions.create({ model: "tiny", messages, temperature: 0, max_tokens: 12 });
  assert.equal(r.object, "chat.completion");
  assert.equal(r.choices.length, 1);
  assert.equal(r.choices[0].message.role, "assistant");
  assert.equal(typeof r.choices[0].message.content, "string");
  assert.ok(["stop", "length"].includes(r.choices[0].finish_reason));
  assert.ok(r.usage.completion_tokens >= 1 && r.usage.completion_tokens <= 12);
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
  whole = r;
});

await check("chat, streamed, equals the whole answer", async () => {
  const stream = await client.chat.completions.create({
    model: "tiny", messages, temperature: 0, max_tokens: 12, stream: true, stream_options: { include_usage: true },
  });
  let text = "", finish = null, usage = null, chunks = 0, role = null;
  for await (const chunk of stream) {
    chunks++;
    assert.equal(chunk.object, "chat.completion.chunk");
    if (chunk.usage) usage = chunk.usage;
    const c = chunk.choices[0];
    if (!c) continue;
    if (c.delta.role) role = c.delta.role;
    if (c.delta.content) text += c.delta.content;
    if (c.finish_reason) finish = c.finish_reason;
  }
  assert.ok(chunks >= 3);
  assert.equal(role, "assistant");
  assert.equal(text, whole.choices[0].message.content);
  assert.equal(finish, whole.choices[0].finish_reason);
  assert.equal(usage.completion_tokens, whole.usage.completion_tokens);
});

await check("max_completion_tokens and stop", async () => {
  const r = await client.chat.completions.create({ model: "tiny", messages, temperature: 0, max_completion_tokens: 3 });
  assert.equal(r.usage.completion_tokens, 3);
  assert.equal(r.choices[0].finish_reason, "length");
  const text = whole.choices[0].message.content;
  if (text.length > 6) {
    const stop = text.slice(3, 5);
    const s = await client.chat.completions.create({ model: "tiny", messages, temperature: 0, max_tokens: 12, stop: [stop] });
    assert.equal(s.choices[0].message.content, text.slice(0, text.indexOf(stop)));
    assert.equal(s.choices[0].finish_reason, "stop");
  }
});

await check("logprobs", async () => {
  const r = await client.chat.completions.create({
    model: "tiny", messages, temperature: 0, max_tokens: 5, logprobs: true, top_logprobs: 2, ignore_eos: true,
  });
  const lp = r.choices[0].logprobs.content;
  assert.equal(lp.length, r.usage.completion_tokens);
  for (const t of lp) {
    assert.ok(t.logprob <= 0);
    assert.equal(t.top_logprobs.length, 2);
    assert.ok(t.top_logprobs[0].logprob >= t.top_logprobs[1].logprob);
    assert.ok(t.top_logprobs[0].logprob >= t.logprob - 1e-6); // Greedy: the best one.
  }
});

await check("a seed repeats a sampled answer", async () => {
  const ask = () => client.chat.completions.create({
    model: "tiny", messages, temperature: 1.0, top_p: 0.9, max_tokens: 10, seed: 7, frequency_penalty: 0.3,
  });
  const [a, b] = await Promise.all([ask(), ask()]);
  assert.equal(a.choices[0].message.content, b.choices[0].message.content);
});

await check("completions", async () => {
  const r = await client.completions.create({ model: "tiny", prompt: "Once upon a time", max_tokens: 6, temperature: 0 });
  assert.equal(r.object, "text_completion");
  assert.equal(typeof r.choices[0].text, "string");
  const s = await client.completions.create({ model: "tiny", prompt: "Once upon a time", max_tokens: 6, temperature: 0, stream: true });
  let text = "";
  for await (const chunk of s) text += chunk.choices[0]?.text ?? "";
  assert.equal(text, r.choices[0].text);
});

await check("errors: bad requests are 400 naming the field", async () => {
  await assert.rejects(
    client.chat.completions.create({ model: "tiny", messages: [{ role: "wizard", content: "x" }] }),
    (e) => e instanceof OpenAI.BadRequestError && e.status === 400 && e.param === "messages[0].role");
  await assert.rejects(client.chat.completions.create({ model: "tiny", messages, n: 2 }),
    (e) => e instanceof OpenAI.BadRequestError && e.param === "n");
  await assert.rejects(client.chat.completions.create({ model: "tiny", messages, temperature: "hot" }),
    (e) => e.status === 400 && e.param === "temperature");
});

await check("errors: a wrong API key is 401", async () => {
  const wrong = new OpenAI({ baseURL: base + "/v1", apiKey: key + "x", maxRetries: 0 });
  await assert.rejects(wrong.models.list(), (e) => e instanceof OpenAI.AuthenticationError && e.status === 401);
});

await check("an aborted stream frees its slot", async () => {
  const controller = new AbortController();
  const stream = await client.chat.completions.create(
    { model: "tiny", messages, max_tokens: 100000, ignore_eos: true, stream: true }, { signal: controller.signal });
  let got = 0;
  try {
    for await (const _ of stream) {
      if (++got === 2) {
        controller.abort(); // The connection closes; chunks already read may still come.
        break;
      }
    }
  } catch (e) {
    assert.ok(controller.signal.aborted, String(e));
  }
  assert.equal(got, 2);
  for (let i = 0; i < 200; i++) {
    const m = await (await fetch(base + "/metrics", { headers: { Authorization: "Bearer " + key } })).text();
    if (/^lumen_slots_busy 0$/m.test(m) && /^lumen_requests_cancelled_total [1-9]/m.test(m)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail("the slot of the aborted stream was not freed");
});

console.log(`all ${checks} checks passed`);
