// The documentation runs: every code block of README.md, CONTRIBUTING.md and docs/*.md that uses
// the package is executed against the built package, as a user would paste it into a file.
//
// - Runs: fenced `js`, `mjs`, `cjs` and `ts` blocks that import or require `entrograd` (a child
//   `node` process; `ts` is transpiled by TypeScript first), and `python` blocks that use
//   safetensors (`python3`). Shell commands and config files are not runs of the package.
// - Each page's blocks run in order in one temporary folder, so a page may write a file in one
//   block and read it in a later one. `node_modules/entrograd` there links to this repository:
//   imports resolve through package.json "exports" to dist/, as for users.
// - A block must exit with code 0. The lines it states as its output (`// → text`, `# → text`;
//   `…` matches anything) must appear among the lines it prints, in that order.
// - `<!-- snippet: skip — reason -->` right before a block skips it (it is still parsed);
//   `<!-- snippet: needs torch -->` runs it only where Python can import torch.
// Also: `ts` blocks type-check against the package's declarations, every relative link in those
// files points at a file that exists (and a heading, for `#anchor`), and the README keeps its
// first screen (install, the example, the two repository commands) within 12 KB.
import { spawnSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { afterAll, describe, expect, it } from "vitest";

const root = fileURLToPath(new URL("..", import.meta.url));
const PAGES = [
  "README.md",
  "CONTRIBUTING.md",
  ...readdirSync(join(root, "docs"))
    .filter((f) => f.endsWith(".md"))
    .sort()
    .map((f) => `docs/${f}`),
];

type Kind = "js" | "ts" | "python";
interface Block {
  page: string;
  line: number; // 1-based line of the opening fence
  lang: string;
  code: string;
  marker: string | null; // the text of a `<!-- snippet: … -->` comment right before the fence
}
interface Snippet extends Block {
  kind: Kind;
  skip: string | null; // the reason, when it does not run here
}

const JS_LANGS = new Set(["js", "mjs", "cjs", "javascript"]);
const TS_LANGS = new Set(["ts", "typescript"]);
const USES_PACKAGE = /\bfrom\s+["']entrograd(?:\/[\w./?-]+)?["']|\brequire\(\s*["']entrograd(?:\/[\w./-]+)?["']\s*\)/;

function blocks(page: string): Block[] {
  const lines = readFileSync(join(root, page), "utf8").split("\n");
  const out: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\S*)\s*$/.exec(lines[i]);
    if (!open) continue;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && !/^```\s*$/.test(lines[i]); i++) body.push(lines[i]);
    let k = start - 1;
    while (k >= 0 && lines[k].trim() === "") k--;
    const marker = k >= 0 ? /^<!--\s*snippet:\s*(.*?)\s*-->$/.exec(lines[k].trim()) : null;
    out.push({ page, line: start + 1, lang: open[1], code: `${body.join("\n")}\n`, marker: marker?.[1] ?? null });
  }
  return out;
}

function kindOf(b: Block): Kind | null {
  if (JS_LANGS.has(b.lang) && USES_PACKAGE.test(b.code)) return "js";
  if (TS_LANGS.has(b.lang) && USES_PACKAGE.test(b.code)) return "ts";
  if ((b.lang === "python" || b.lang === "py") && /\bsafetensors\b/.test(b.code)) return "python";
  return null;
}

const hasTorch = spawnSync("python3", ["-c", "import torch"], { stdio: "ignore" }).status === 0;

/** The snippets of a page, or an error for a marker that is misplaced or unknown. */
function snippets(page: string): Snippet[] {
  const out: Snippet[] = [];
  for (const b of blocks(page)) {
    const kind = kindOf(b);
    const where = `${b.page}:${b.line}`;
    if (kind === null) {
      if (b.marker !== null) throw new Error(`${where}: a snippet marker before a block that is not run`);
      continue;
    }
    let skip: string | null = null;
    if (b.marker !== null) {
      const m = /^skip\s*[—:-]+\s*(\S.*)$/.exec(b.marker);
      if (m) skip = m[1];
      else if (b.marker === "needs torch") skip = hasTorch ? null : "needs torch, which the set-up does not install";
      else throw new Error(`${where}: unknown snippet marker "${b.marker}" (skip — reason, or needs torch)`);
    }
    out.push({ ...b, kind, skip });
  }
  return out;
}

/** The source to run, and the file name whose extension tells node the module system. */
function program(s: Snippet): { file: string; source: string } {
  const name = `snippet-${s.page.replace(/\W+/g, "-")}-${s.line}`;
  if (s.kind === "python") return { file: `${name}.py`, source: s.code };
  let source = s.code;
  if (s.kind === "ts") {
    const r = ts.transpileModule(source, {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
      reportDiagnostics: true,
      fileName: `${name}.ts`,
    });
    const errors = (r.diagnostics ?? []).map((d) => ts.flattenDiagnosticMessageText(d.messageText, "\n"));
    if (errors.length) throw new Error(`${s.page}:${s.line}: TypeScript: ${errors.join("; ")}`);
    source = r.outputText;
  }
  const commonJs = s.lang === "cjs" || (/\brequire\(/.test(source) && !/^\s*(import|export)\s/m.test(source));
  return { file: `${name}.${commonJs ? "cjs" : "mjs"}`, source };
}

/** The output lines a snippet states: `// → text` or `# → text`. */
function stated(s: Snippet): string[] {
  const mark = s.kind === "python" ? /#\s*→\s?(.*)$/ : /\/\/\s*→\s?(.*)$/;
  return s.code
    .split("\n")
    .map((l) => mark.exec(l)?.[1].trim())
    .filter((l): l is string => l !== undefined);
}

function expectPrinted(stdout: string, expected: string[], where: string): void {
  const lines = stdout.split("\n").map((l) => l.trim());
  let at = 0;
  for (const e of expected) {
    const pattern = new RegExp(`^${e.replace(/[.*+?^${}()|[\]\\]/g, "\\$&").replace(/…/g, ".*")}$`);
    while (at < lines.length && !pattern.test(lines[at])) at++;
    if (at === lines.length)
      throw new Error(`${where}: the snippet states "${e}", not printed (in order) in:\n${stdout.trimEnd()}`);
    at++;
  }
}

const folders: string[] = [];
afterAll(() => {
  for (const f of folders) rmSync(f, { recursive: true, force: true });
});

function workFolder(): string {
  const dir = mkdtempSync(join(tmpdir(), "entrograd-snippets-"));
  folders.push(dir);
  const nm = join(dir, "node_modules");
  mkdirSync(nm);
  symlinkSync(root, join(nm, "entrograd"), "dir");
  return dir;
}

function run(s: Snippet, dir: string): string {
  const { file, source } = program(s);
  writeFileSync(join(dir, file), source);
  const [cmd, args] = s.kind === "python" ? ["python3", [file]] : [process.execPath, [file]];
  const r = spawnSync(cmd, args, { cwd: dir, encoding: "utf8", timeout: 120_000 });
  if (r.status !== 0)
    throw new Error(
      `${s.page}:${s.line} exited with ${r.status ?? r.signal}\n${(r.stdout + r.stderr).trimEnd().split("\n").slice(-30).join("\n")}`,
    );
  return r.stdout;
}

/** A skipped block must still parse. */
function parses(s: Snippet, dir: string): void {
  const { file, source } = program(s);
  writeFileSync(join(dir, file), source);
  const [cmd, args] =
    s.kind === "python" ? ["python3", ["-m", "py_compile", file]] : [process.execPath, ["--check", file]];
  const r = spawnSync(cmd, args, { cwd: dir, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`${s.page}:${s.line} does not parse:\n${r.stderr}`);
}

const all = PAGES.map((page) => ({ page, list: snippets(page) }));

for (const { page, list } of all) {
  if (list.length === 0) continue;
  describe(page, () => {
    let dir = "";
    for (const s of list) {
      const name = `${s.kind} block at line ${s.line}`;
      if (s.skip !== null) {
        it.skip(`${name} (${s.skip})`, () => undefined);
        it(`${name} parses (skipped: ${s.skip})`, () => {
          dir ||= workFolder();
          parses(s, dir);
        });
        continue;
      }
      it(name, () => {
        dir ||= workFolder();
        const stdout = run(s, dir);
        expectPrinted(stdout, stated(s), `${s.page}:${s.line}`);
      }, 180_000);
    }
  });
}

describe("the documentation", () => {
  it("has snippets that run, and gives a reason for each skip", () => {
    const list = all.flatMap((p) => p.list);
    const ran = list.filter((s) => s.skip === null);
    const skipped = list.filter((s) => s.skip !== null);
    console.log(
      `snippets: ${ran.length} run, ${skipped.length} skipped\n` +
        skipped.map((s) => `  skipped ${s.page}:${s.line} (${s.kind}): ${s.skip}`).join("\n"),
    );
    expect(ran.filter((s) => s.page === "README.md").length).toBeGreaterThanOrEqual(1);
    expect(ran.filter((s) => s.kind === "python").length).toBeGreaterThanOrEqual(2);
    for (const s of skipped) expect(s.skip?.length ?? 0, `${s.page}:${s.line}`).toBeGreaterThan(10);
  });

  it("ts blocks type-check against the package's declarations", () => {
    const list = all.flatMap((p) => p.list).filter((s) => s.kind === "ts");
    expect(list.length).toBeGreaterThan(0);
    const dir = workFolder();
    const files = list.map((s) => {
      const file = join(dir, `${s.page.replace(/\W+/g, "-")}-${s.line}.mts`);
      writeFileSync(file, s.code);
      return file;
    });
    // "entrograd" resolves through node_modules/entrograd → this repository's "exports" types.
    const program = ts.createProgram(files, {
      module: ts.ModuleKind.NodeNext,
      moduleResolution: ts.ModuleResolutionKind.NodeNext,
      target: ts.ScriptTarget.ES2022,
      lib: ["lib.es2022.d.ts", "lib.dom.d.ts", "lib.esnext.disposable.d.ts"],
      strict: true,
      noEmit: true,
      skipLibCheck: true,
      types: ["node"],
      typeRoots: [join(root, "node_modules", "@types")],
    });
    const errors = ts.getPreEmitDiagnostics(program).map((d) => {
      const at = d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start).line + 1 : 0;
      return `${d.file ? relative(dir, d.file.fileName) : ""}:${at} ${ts.flattenDiagnosticMessageText(d.messageText, " ")}`;
    });
    expect(errors).toEqual([]);
  });

  it("README.md: at most 12 KB; install, the example and the two repository commands come first", () => {
    const text = readFileSync(join(root, "README.md"), "utf8");
    expect(Buffer.byteLength(text)).toBeLessThanOrEqual(12 * 1024);
    const lines = text.split("\n");
    const at = (re: RegExp) => lines.findIndex((l) => re.test(l));
    expect(at(/^npm install entrograd$/)).toBeGreaterThanOrEqual(0);
    expect(at(/^npm install entrograd$/)).toBeLessThan(12);
    const example = snippets("README.md").find((s) => s.skip === null);
    expect(example?.line ?? Infinity).toBeLessThan(15);
    expect(at(/^npm start\b/)).toBeGreaterThanOrEqual(0);
    expect(at(/^npm start\b/)).toBeLessThan(60);
    expect(at(/^npm test\b/)).toBeGreaterThanOrEqual(0);
    expect(at(/^npm test\b/)).toBeLessThan(60);
  });

  it("every relative link points at a file that exists, and a heading for #anchors", () => {
    const broken: string[] = [];
    for (const page of PAGES) {
      // Links in code are code, not links.
      const text = readFileSync(join(root, page), "utf8")
        .replace(/^```[\s\S]*?^```/gm, "")
        .replace(/`[^`\n]*`/g, "``");
      for (const m of text.matchAll(/!?\[[^\]]*\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) {
        const target = m[1];
        if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // https:, mailto:
        const [path, anchor] = target.split("#");
        const file = path === "" ? join(root, page) : resolve(dirname(join(root, page)), path);
        const name = `${page}: ${target}`;
        if (!file.startsWith(root) || !existsSync(file)) {
          broken.push(`${name} (no file ${relative(root, file)})`);
          continue;
        }
        if (anchor !== undefined && !anchors(file).has(anchor)) broken.push(`${name} (no heading #${anchor})`);
      }
    }
    expect(broken).toEqual([]);
  });
});

/** GitHub's anchors of a Markdown file's headings. */
function anchors(file: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  const text = readFileSync(file, "utf8").replace(/^```[\s\S]*?^```/gm, "");
  for (const m of text.matchAll(/^#{1,6}\s+(.*)$/gm)) {
    const base = m[1]
      .trim()
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, "")
      .replace(/\s/g, "-");
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}
