// Manual KaTeX check of a Markdown file (see docs/cnn.md): npm install katex in a scratch dir, then
//   NODE_PATH=<scratch>/node_modules node docs/katex_check.js step.md
const katex = require('katex'); const fs = require('fs');
const md = fs.readFileSync(process.argv[2], 'utf8');
const display = [...md.matchAll(/\$\$([\s\S]+?)\$\$/g)].map(m => [m[1], true]);
const rest = md.replace(/\$\$[\s\S]+?\$\$/g, '');
const inline = [...rest.matchAll(/\$([^$\n]+)\$/g)].map(m => [m[1], false]);
let bad = 0;
for (const [tex, d] of [...display, ...inline]) {
  try { katex.renderToString(tex, {throwOnError: true, displayMode: d, strict: 'error'}); }
  catch (e) { bad++; console.log('ERR', e.message.slice(0, 200)); }
}
console.log(`katex ${require('katex/package.json').version}: ${display.length} display + ${inline.length} inline, ${bad} errors`);
