// llama.cpp (through node-llama-cpp, CPU only) as Pargs' independent reference: loads a GGUF, evaluates a
// text's tokens and prints, as JSON, the next-token log-probabilities after every position and the
// greedy continuation of 32 tokens.
//
//   node reference.mjs --model FILE.gguf --text "..." [--name NAME] [--greedy 32] [--threads 1]
//
// Tokens are llama.cpp's own tokenization of the text, with BOS first when the GGUF says
// tokenizer.ggml.add_bos_token (node-llama-cpp's tokenize() never adds it).
import {getLlama, LlamaLogLevel} from "node-llama-cpp";
import {readFileSync} from "node:fs";
import {basename} from "node:path";

function parseArgs(argv) {
    const args = {greedy: 32, threads: 1};
    for (let i = 0; i < argv.length; i++) {
        const key = argv[i];
        const value = argv[++i];
        if (value === undefined) throw new Error(`${key} needs a value`);
        if (key === "--model") args.model = value;
        else if (key === "--text") args.text = value;
        else if (key === "--name") args.name = value;
        else if (key === "--greedy") args.greedy = Number(value);
        else if (key === "--threads") args.threads = Number(value);
        else throw new Error(`unknown option ${key}`);
    }
    if (!args.model || args.text === undefined) throw new Error("usage: node reference.mjs --model FILE.gguf --text TEXT [--name NAME] [--greedy N] [--threads N]");
    return args;
}

const args = parseArgs(process.argv.slice(2));
const info = JSON.parse(readFileSync(new URL("./node_modules/node-llama-cpp/llama/binariesGithubRelease.json", import.meta.url), "utf8"));
const llama = await getLlama({gpu: false, build: "never", logLevel: LlamaLogLevel.error});
const model = await llama.loadModel({modelPath: args.model, gpuLayers: 0});
const metadata = model.fileInfo.metadata;
const addBos = metadata.tokenizer?.ggml?.add_bos_token === true;
const vocabSize = metadata.tokenizer.ggml.tokens.length;

const tokens = [...(addBos ? [model.tokens.bos] : []), ...model.tokenize(args.text, false)];
// llama.cpp keeps its KV cache in float16 by default, which alone moves log-probabilities by ~1e-2; the
// reference keeps keys and values in float32 (and no flash attention, whose CPU path also rounds to f16).
const context = await model.createContext({
    contextSize: 256, threads: args.threads, batchSize: 256, sequences: 1, flashAttention: false,
    experimentalKvCacheKeyType: "F32", experimentalKvCacheValueType: "F32",
});
const sequence = context.getSequence();

// Temperature 1 with every filter off: the probabilities are the plain softmax of the logits.
const plain = {temperature: 1, topK: 0, topP: 1, minP: 0};
const evaluated = await sequence.controlledEvaluate(tokens.map(t => [t, {generateNext: {probabilities: true, options: plain}}]));
const logprobs = evaluated.map((result, position) => {
    const probabilities = result?.next?.probabilities;
    if (probabilities == null || probabilities.size !== vocabSize)
        throw new Error(`position ${position}: expected ${vocabSize} probabilities, got ${probabilities?.size}`);
    const row = new Array(vocabSize);
    // A probability that underflowed float32 has no finite log; null marks it.
    for (const [token, p] of probabilities) row[token] = p > 0 ? Number(Math.log(p).toFixed(6)) : null;
    return row;
});

// Greedy decoding through llama.cpp's own sampler (temperature 0), from a fresh sequence.
await sequence.clearHistory();
const greedy = [];
for await (const token of sequence.evaluate(tokens, {temperature: 0})) {
    greedy.push(token);
    if (greedy.length >= args.greedy) break;
}

console.log(JSON.stringify({
    name: args.name ?? basename(args.model),
    gguf: basename(args.model),
    reference: `llama.cpp (node-llama-cpp 3.21.1 prebuilt linux-x64 binaries, release ${info.release}; CPU, ${args.threads} thread)`,
    text: args.text,
    kv_cache: "f32",
    add_bos: addBos,
    vocab_size: vocabSize,
    tokens,
    greedy,
    logprobs,
}));
await context.dispose();
await model.dispose();
