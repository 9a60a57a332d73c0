// The yardstick: llama.cpp's speed on a GGUF, measured the way `pargs bench generate` measures Pargs, so the
// two can be run side by side on one file. Greedy decoding at batch 1 (decode tok/s, prefill excluded) and
// the prefill of a long prompt (prefill tok/s), through node-llama-cpp 3.21.1's prebuilt CPU binaries with
// llama.cpp's defaults (float16 KV cache), one context per thread count.
//
//   node llamacpp-decode.mjs --model FILE.gguf [--threads 1,2] [--new-tokens 64] [--prompt 16] [--prefill 512] [--repeats 3]
//
// Prints one JSON object per line: {"model", "threads", "decode_tok_s", "prefill_tokens", "prefill_tok_s"}.
// node-llama-cpp is installed by tools/llamacpp-reference (npm ci there).
import {getLlama, LlamaLogLevel} from "../../tools/llamacpp-reference/node_modules/node-llama-cpp/dist/index.js";
import {basename} from "node:path";

const args = {threads: [1, 2], newTokens: 64, prompt: 16, prefill: 512, repeats: 3};
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 2) {
    const [key, value] = [argv[i], argv[i + 1]];
    if (value === undefined) throw new Error(`${key} needs a value`);
    if (key === "--model") args.model = value;
    else if (key === "--threads") args.threads = value.split(",").map(Number);
    else if (key === "--new-tokens") args.newTokens = Number(value);
    else if (key === "--prompt") args.prompt = Number(value);
    else if (key === "--prefill") args.prefill = Number(value);
    else if (key === "--repeats") args.repeats = Number(value);
    else throw new Error(`unknown option ${key}`);
}
if (!args.model) throw new Error("usage: node llamacpp-decode.mjs --model FILE.gguf [--threads 1,2] [--new-tokens N] [--prompt N] [--prefill N] [--repeats N]");

const llama = await getLlama({gpu: false, build: "never", logLevel: LlamaLogLevel.error});
const model = await llama.loadModel({modelPath: args.model, gpuLayers: 0});
const vocab = model.fileInfo.metadata.tokenizer.ggml.tokens.length;
// Deterministic token ids in [3, min(vocab, 256)): real tokens of every vocabulary here, never special ones.
const ids = n => Array.from({length: n}, (_, i) => 3 + (i * 7919) % (Math.min(vocab, 256) - 3));

for (const threads of args.threads) {
    const context = await model.createContext({
        contextSize: Math.max(args.prefill, args.prompt + args.newTokens) + 16, batchSize: Math.max(args.prefill, args.prompt),
        threads, sequences: 1,
    });
    const sequence = context.getSequence();
    let bestDecode = 0, bestPrefill = 0;
    for (let repeat = 0; repeat < args.repeats; repeat++) {
        await sequence.clearHistory();
        let count = 0, firstAt = 0n;
        for await (const _ of sequence.evaluate(ids(args.prompt), {temperature: 0})) {
            // The first token comes with the prompt's prefill; decode time runs from it to the last.
            if (count === 0) firstAt = process.hrtime.bigint();
            if (++count > args.newTokens) break;
        }
        const seconds = Number(process.hrtime.bigint() - firstAt) / 1e9;
        bestDecode = Math.max(bestDecode, args.newTokens / seconds);

        await sequence.clearHistory();
        const start = process.hrtime.bigint();
        await sequence.evaluateWithoutGeneratingNewTokens(ids(args.prefill));
        bestPrefill = Math.max(bestPrefill, args.prefill / (Number(process.hrtime.bigint() - start) / 1e9));
    }
    console.log(JSON.stringify({
        model: basename(args.model), threads, new_tokens: args.newTokens,
        decode_tok_s: Number(bestDecode.toFixed(1)), prefill_tokens: args.prefill, prefill_tok_s: Number(bestPrefill.toFixed(1)),
    }));
    await context.dispose();
}
await model.dispose();
