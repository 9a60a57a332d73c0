// The reference half of `pargs bench tokenize`: encodes every text of a corpus with Hugging Face's Rust
// tokenizers library (npm `tokenizers`), one awaited encode call per text as a Node user would, and prints
// per text the best time of R repeats (ns) and the number of ids, as JSON on stdout. Also the best time of one
// encodeBatch call over the texts listed by FIRST:END ranges (run with TOKENIZERS_PARALLELISM=false, so it is
// the library's own single-thread speed without a call per text).
//
//   node bench.mjs CORPUS.jsonl.gz REPEATS BATCH_RANGES NAME=path/to/tokenizer.json [NAME=...]
//   (BATCH_RANGES e.g. 332:392,392:1092)
import fs from 'node:fs';
import zlib from 'node:zlib';
import { Tokenizer } from 'tokenizers';

const [corpusPath, repeatsText, rangesText, ...specs] = process.argv.slice(2);
const repeats = Number(repeatsText);
const corpus = zlib.gunzipSync(fs.readFileSync(corpusPath)).toString('utf8').split('\n').filter((l) => l.length > 0).map((l) => JSON.parse(l));
const result = {};
for (const spec of specs) {
  const at = spec.indexOf('=');
  const name = spec.slice(0, at);
  const tokenizer = Tokenizer.fromFile(spec.slice(at + 1));
  for (const text of corpus) await tokenizer.encode(text, null, { addSpecialTokens: false }); // warm-up
  const ns = new Array(corpus.length).fill(Infinity);
  const tokens = new Array(corpus.length).fill(0);
  for (let r = 0; r < repeats; r++) {
    for (let i = 0; i < corpus.length; i++) {
      const start = process.hrtime.bigint();
      const encoding = await tokenizer.encode(corpus[i], null, { addSpecialTokens: false });
      const elapsed = Number(process.hrtime.bigint() - start);
      if (elapsed < ns[i]) ns[i] = elapsed;
      tokens[i] = encoding.getIds().length;
    }
  }
  const batch = rangesText.split(',').flatMap((r) => { const [a, b] = r.split(':').map(Number); return corpus.slice(a, b); });
  let batchNs = Infinity;
  for (let r = 0; r < repeats; r++) {
    const start = process.hrtime.bigint();
    await tokenizer.encodeBatch(batch, { addSpecialTokens: false });
    batchNs = Math.min(batchNs, Number(process.hrtime.bigint() - start));
  }
  result[name] = { ns, tokens, batchNs };
}
process.stdout.write(JSON.stringify(result));
