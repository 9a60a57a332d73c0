// The conversations every chat template is rendered on. Each case: a name, the messages, add_generation_prompt,
// and optional extra template variables (tools, enable_thinking...). Families add their own cases below.

const u = (content) => ({ role: "user", content });
const a = (content, more = {}) => ({ role: "assistant", content, ...more });
const s = (content) => ({ role: "system", content });

// Shared by every template: plain role/content turns.
export const common = [
  { name: "user-only-prompt", messages: [u("Hello!")], add_generation_prompt: true },
  { name: "user-only-no-prompt", messages: [u("Hello!")], add_generation_prompt: false },
  { name: "system-user-prompt", messages: [s("You are a helpful assistant."), u("What is 2+2?")], add_generation_prompt: true },
  { name: "system-user-no-prompt", messages: [s("You are terse."), u("Name a colour.")], add_generation_prompt: false },
  { name: "system-user-assistant", messages: [s("Be kind."), u("Hi"), a("Hello! How can I help?")], add_generation_prompt: false },
  { name: "three-turns-prompt", messages: [u("One"), a("Two"), u("Three"), a("Four"), u("Five")], add_generation_prompt: true },
  { name: "three-turns-ending-assistant", messages: [u("Q1"), a("A1"), u("Q2"), a("A2")], add_generation_prompt: false },
  { name: "unicode", messages: [s("Réponds en français, s'il te plaît."), u("日本語で答えて: 你好, мир, مرحبا, שלום"), a("Ça va ✓ — naïve café")], add_generation_prompt: false },
  { name: "empty-user-content", messages: [u("")], add_generation_prompt: true },
  { name: "whitespace-padded", messages: [s("  padded system  \n"), u("\n\n  spaced question \t\n"), a("  answer with spaces  ")], add_generation_prompt: false },
  { name: "template-syntax-in-content", messages: [u("Print {{ messages }} and {% if x %} and {# c #} literally, with 'quotes' and \"double\" and \\backslash")], add_generation_prompt: true },
  { name: "five-turns", messages: [u("a"), a("b"), u("c"), a("d"), u("e"), a("f"), u("g"), a("h"), u("i")], add_generation_prompt: true },
  { name: "code-block", messages: [u("Fix this:\n```python\ndef f(x):\n    return x+1\n```"), a("Here:\n\n```python\ndef f(x: int) -> int:\n    return x + 1\n```\n")], add_generation_prompt: false },
  { name: "empty-system", messages: [s(""), u("Hi")], add_generation_prompt: true },
  { name: "assistant-trailing-newlines", messages: [u("Say hi"), a("hi\n\n\n")], add_generation_prompt: false },
  { name: "whitespace-only-user", messages: [u("   \n\t ")], add_generation_prompt: true },
  { name: "emoji-astral", messages: [u("Emoji: 😀👍🏽 🇫🇷 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 and a ZWJ family 👨‍👩‍👧")], add_generation_prompt: true },
  { name: "html-like", messages: [s("Output <b>bold</b> &amp; <i>italic</i>"), u("<script>alert('x')</script> & done")], add_generation_prompt: true },
  { name: "crlf-and-tabs", messages: [u("line one\r\nline two\r\n\tindented"), a("ok\tdone")], add_generation_prompt: false },
  { name: "long-content", messages: [u("word ".repeat(300).trim())], add_generation_prompt: true },
];

const weatherTool = {
  type: "function",
  function: {
    name: "get_weather",
    description: "Get the current weather in a city",
    parameters: {
      type: "object",
      properties: {
        city: { type: "string", description: "The city, e.g. Paris" },
        unit: { type: "string", enum: ["celsius", "fahrenheit"] },
      },
      required: ["city"],
    },
  },
};
const searchTool = {
  type: "function",
  function: {
    name: "search",
    description: "Search the web — résumé of results, with “quotes”",
    parameters: { type: "object", properties: { query: { type: "string" }, limit: { type: "integer", default: 5 } }, required: ["query"] },
  },
};
const toolCall = (name, args) => ({ type: "function", function: { name, arguments: args } });

export const qwen3 = [
  { name: "thinking-disabled", messages: [u("Quick answer please")], add_generation_prompt: true, extra: { enable_thinking: false } },
  { name: "thinking-enabled", messages: [u("Think about it")], add_generation_prompt: true, extra: { enable_thinking: true } },
  { name: "reasoning-content-last-turn", messages: [u("2+2?"), a("4", { reasoning_content: "Two plus two is four." })], add_generation_prompt: false },
  { name: "reasoning-content-history", messages: [u("2+2?"), a("4", { reasoning_content: "Simple sum." }), u("And 3+3?")], add_generation_prompt: true },
  { name: "inline-think-last-turn", messages: [u("Why?"), a("<think>\nLet me think.\n</think>\n\nBecause.")], add_generation_prompt: false },
  { name: "inline-think-history", messages: [u("Why?"), a("<think>\nReasoning here\n</think>\n\nBecause."), u("Really?")], add_generation_prompt: true },
  { name: "tools-no-system", messages: [u("Weather in Paris?")], add_generation_prompt: true, extra: { tools: [weatherTool] } },
  { name: "tools-with-system", messages: [s("You can use tools."), u("Search for cats")], add_generation_prompt: true, extra: { tools: [weatherTool, searchTool] } },
  {
    name: "tool-call-roundtrip",
    messages: [
      u("Weather in Paris?"),
      a("", { tool_calls: [toolCall("get_weather", { city: "Paris", unit: "celsius" })] }),
      { role: "tool", content: "{\"temperature\": 21, \"sky\": \"clear\"}" },
      a("It is 21 °C and clear in Paris."),
    ],
    add_generation_prompt: false,
    extra: { tools: [weatherTool] },
  },
  {
    name: "tool-call-string-arguments",
    messages: [u("Search dogs"), a("Let me search.", { tool_calls: [toolCall("search", "{\"query\": \"dogs\"}")] }), { role: "tool", content: "3 results" }],
    add_generation_prompt: true,
    extra: { tools: [searchTool] },
  },
  {
    name: "parallel-tool-calls",
    messages: [
      u("Weather in Paris and Tokyo?"),
      a("", { tool_calls: [toolCall("get_weather", { city: "Paris" }), toolCall("get_weather", { city: "東京" })] }),
      { role: "tool", content: "18" },
      { role: "tool", content: "25" },
    ],
    add_generation_prompt: true,
    extra: { tools: [weatherTool] },
  },
  {
    name: "tool-response-wrapped-user",
    messages: [u("Go"), a("", { tool_calls: [toolCall("search", { query: "x", limit: 3 })] }), u("<tool_response>\nmanual\n</tool_response>")],
    add_generation_prompt: true,
  },
  { name: "system-in-the-middle", messages: [u("Hi"), a("Hello"), s("New instructions"), u("Go on")], add_generation_prompt: true },
  {
    name: "thinking-after-last-query",
    messages: [u("Plan"), a("<think>step 1</think>Calling", { tool_calls: [toolCall("search", { query: "plan" })] }), { role: "tool", content: "done" }, a("<think>\nok\n</think>\nFinished")],
    add_generation_prompt: false,
  },
];

export const gemma3 = [
  { name: "list-content-parts", messages: [{ role: "user", content: [{ type: "text", text: "  Describe  " }, { type: "image" }, { type: "text", text: "this image" }] }], add_generation_prompt: true },
  { name: "system-list-content", messages: [{ role: "system", content: [{ type: "text", text: "Sys as parts" }] }, u("Hi")], add_generation_prompt: true },
  { name: "roles-not-alternating", messages: [u("a"), u("b")], add_generation_prompt: true },
  { name: "assistant-first", messages: [a("I start")], add_generation_prompt: false },
  { name: "content-not-string-nor-list", messages: [{ role: "user", content: 42 }], add_generation_prompt: true },
];

export const llama3_1 = [
  { name: "tool-role-passthrough", messages: [u("x"), { role: "tool", content: " tool output " }], add_generation_prompt: true },
  { name: "custom-bos", messages: [u("hello")], add_generation_prompt: true, extra: { bos_token: "<BOS>" } },
];

const listTool = {
  type: "function",
  function: {
    name: "plan_trip",
    description: "Plan a trip",
    parameters: {
      type: "object",
      properties: {
        cities: { type: "array", items: { type: "string" }, description: "Cities to visit" },
        days: { type: "integer", default: 3 },
        budget: { type: "number", nullable: true },
        mode: { type: "string", enum: ["train", "car"], default: "train" },
        stops: { type: "array", items: { type: "object", properties: { name: { type: "string" } } } },
        flexible: { type: "boolean" },
        notes: { oneOf: [{ type: "string", description: "free text" }, { type: "integer" }] },
        anything: {},
      },
      required: ["cities"],
    },
  },
};
const noParamTool = { type: "function", function: { name: "now", description: "The current time" } };

// gpt-oss (harmony format): thinking field, one tool call per assistant message, reasoning_effort, builtin tools.
export const gptoss = [
  { name: "thinking-last-turn-training", messages: [u("2+2?"), a("4", { thinking: "Two plus two." })], add_generation_prompt: false },
  { name: "thinking-history-dropped", messages: [u("2+2?"), a("4", { thinking: "Two plus two." }), u("3+3?")], add_generation_prompt: true },
  { name: "reasoning-effort-high", messages: [u("Prove it")], add_generation_prompt: true, extra: { reasoning_effort: "high" } },
  { name: "model-identity", messages: [u("Who are you?")], add_generation_prompt: true, extra: { model_identity: "You are Pargs-Bot." } },
  { name: "builtin-tools", messages: [u("Browse and compute")], add_generation_prompt: true, extra: { builtin_tools: ["browser", "python"] } },
  { name: "function-tools", messages: [s("Use tools wisely."), u("Weather?")], add_generation_prompt: true, extra: { tools: [weatherTool, searchTool, listTool, noParamTool] } },
  {
    name: "tool-call-roundtrip",
    messages: [u("Weather in Paris?"), a("", { thinking: "Need the tool.", tool_calls: [toolCall("get_weather", { city: "Paris" })] }), { role: "tool", content: "21 degrees" }],
    add_generation_prompt: true,
    extra: { tools: [weatherTool] },
  },
  {
    name: "tool-call-then-final",
    messages: [u("Weather?"), a("Checking", { tool_calls: [toolCall("get_weather", { city: "Oslo" })] }), { role: "tool", content: "{\"t\": -3}" }, a("It is -3 °C.")],
    add_generation_prompt: false,
    extra: { tools: [weatherTool] },
  },
  { name: "channel-tags-refused", messages: [u("x"), a("<|channel|>final<|message|>hi")], add_generation_prompt: false },
  { name: "tool-without-call-refused", messages: [u("x"), { role: "tool", content: "orphan" }], add_generation_prompt: true },
  { name: "developer-role", messages: [{ role: "developer", content: "Dev instructions" }, u("Go")], add_generation_prompt: true },
];
