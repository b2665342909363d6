// Reference renderer for the chat-template tests: @huggingface/jinja, the renderer transformers.js uses.
// Reads {"template": "...", "cases": [{...variables...}, ...]} as JSON on stdin and writes a JSON array
// with one entry per case: {"output": "..."} or {"error": "..."}. One process renders all cases.
import { Template } from "@huggingface/jinja";

let input = "";
process.stdin.setEncoding("utf8");
for await (const chunk of process.stdin) input += chunk;
const { template, cases } = JSON.parse(input);

let parsed = null;
let parseError = null;
try {
  parsed = new Template(template);
} catch (e) {
  parseError = String(e && e.message ? e.message : e);
}

const results = cases.map((variables) => {
  if (parseError !== null) return { error: parseError };
  try {
    return { output: parsed.render(variables) };
  } catch (e) {
    return { error: String(e && e.message ? e.message : e) };
  }
});
process.stdout.write(JSON.stringify(results));
