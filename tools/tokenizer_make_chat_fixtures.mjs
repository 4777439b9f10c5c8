// Generates tests/fixtures/tokenizer/chat_cases.jsonl: the text each chat template in
// tests/fixtures/tokenizer/chat_templates/ renders for a set of conversations, rendered by
// Hugging Face's own Jinja implementation (@huggingface/jinja, as transformers.js uses):
//   mkdir -p /tmp/tokref && (cd /tmp/tokref && npm install @huggingface/jinja)
//   TOKREF=/tmp/tokref node tools/tokenizer_make_chat_fixtures.mjs      (from the repository root)
import fs from 'fs';
import path from 'path';
import { createRequire } from 'module';

const tokref = process.env.TOKREF || '/tmp/tokref';
const require = createRequire(path.join(tokref, 'package.json'));
const { Template } = await import(require.resolve('@huggingface/jinja'));

const dir = 'tests/fixtures/tokenizer/chat_templates';
const templates = ['qwen3', 'qwen25', 'qwen25_math', 'qwen2'];
const conversations = [
  [{ role: 'user', content: 'What is 2+2?' }],
  [{ role: 'system', content: 'You are terse.' }, { role: 'user', content: 'Hi' }],
  [{ role: 'system', content: 'S' }, { role: 'user', content: 'Q1' }, { role: 'assistant', content: 'A1' },
   { role: 'user', content: 'Q2' }],
  [{ role: 'user', content: 'Q1' }, { role: 'assistant', content: '<think>\nR1\n</think>\n\nA1' },
   { role: 'user', content: 'Q2' }],
  [{ role: 'user', content: 'Q' }, { role: 'assistant', content: '<think>\nreasoning here\n</think>\n\nThe answer.' }],
  [{ role: 'user', content: 'Q' }, { role: 'assistant', content: 'plain answer' }],
  [{ role: 'user', content: 'Q' }, { role: 'assistant', content: '\n\nleading newlines' }],
  [{ role: 'user', content: 'Q' }, { role: 'assistant', content: '<think>a</think>b<think>c</think>\nd' }],
  [{ role: 'user', content: 'Q' }, { role: 'assistant', content: 'no open tag</think>\n\nafter' }],
  [{ role: 'user', content: 'Q' }, { role: 'assistant', content: 'calling a tool' },
   { role: 'tool', content: 'result 1' }, { role: 'tool', content: 'result 2' },
   { role: 'assistant', content: '<think>\nok\n</think>\n\ndone' }],
  [{ role: 'user', content: 'Q' }, { role: 'assistant', content: '<think>\nr\n</think>\n\nx' },
   { role: 'user', content: '<tool_response>\nr\n</tool_response>' }, { role: 'assistant', content: '<think>\nr2\n</think>\n\ny' }],
  [{ role: 'system', content: 'only a system message' }],
  [{ role: 'user', content: 'Unicode: caf\u00e9 \u4f60\u597d \ud83d\ude00\nline two\r\n' },
   { role: 'system', content: 'late system' }, { role: 'user', content: 'Please reason step by step, and put your final answer within \\boxed{}.' }],
];

const lines = [];
for (const name of templates) {
  const tpl = new Template(fs.readFileSync(path.join(dir, name + '.jinja'), 'utf8'));
  for (const messages of conversations)
    for (const add_generation_prompt of [false, true])
      for (const enable_thinking of [false, true]) {
        const text = tpl.render({ messages, add_generation_prompt, enable_thinking, bos_token: '' });
        lines.push(JSON.stringify({ template: name, messages, add_generation_prompt, enable_thinking, text }));
      }
}
fs.writeFileSync('tests/fixtures/tokenizer/chat_cases.jsonl', lines.join('\n') + '\n');
console.log('wrote ' + lines.length + ' cases to tests/fixtures/tokenizer/chat_cases.jsonl');
