// Reference renderer for the chat-template tests: @huggingface/jinja, the renderer transformers.js uses.
// Reads JSON on stdin, either {"template": "...", "cases": [{...variables...}, ...]} (one template, many
// variable sets) or {"batch": [{"template": "...", "variables": {...}}, ...]} (many templates), and writes
// a JSON array with one entry per rendering: {"output": "..."} or {"error": "..."}.
import { Template } from "@huggingface/jinja";

let input = "";
process.stdin.setEncoding("utf8");
for await (const chunk of process.stdin) input += chunk;
const request = JSON.parse(input);

const message = (e) => String(e && e.message ? e.message : e);

function compile(source) {
  try {
    return { template: new Template(source) };
  } catch (e) {
    return { error: message(e) };
  }
}

function render(compiled, variables) {
  if (compiled.error !== undefined) return { error: compiled.error };
  try {
    return { output: compiled.template.render(variables) };
  } catch (e) {
    return { error: message(e) };
  }
}

let results;
if (request.batch) {
  results = request.batch.map(({ template, variables }) => render(compile(template), variables));
} else {
  const compiled = compile(request.template);
  results = request.cases.map((variables) => render(compiled, variables));
}
process.stdout.write(JSON.stringify(results));
