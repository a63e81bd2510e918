// The layering rules that DEVELOPERS.md states, checked on the code as it is. Imports are read by
// the TypeScript parser (static, dynamic, re-exports, `import('…')` types), and "calls a Source's
// delete" is decided by the type checker, so a rule cannot be dodged by spelling or layout.
// An import counts whether or not it is type-only, and through any chain of modules in between.
import fs from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { UNIT_TESTS } from './tiers.ts';

const ROOT = path.resolve(import.meta.dirname, '..');
/** Where the product's code lives (tests are free to reach into anything). */
const CODE_DIRS = ['src', 'providers', 'state', 'scripts', 'bench', 'bin'];
/** The code a user runs. bench/ and scripts/ (the chaos suite) drive a source against an emulator, as tests do. */
const SHIPPED = /^(src|providers|state|bin)\//;
const CODE_FILE = /\.(ts|mts|js|mjs)$/;
const DELETION = 'src/engine/deletion.ts';
const SOURCE_CONTRACT = 'providers/types.ts';

interface Import {
  /** Repo-relative path of the module imported, or null for a package or built-in. */
  target: string | null;
  specifier: string;
  line: number;
}

function codeFiles(dirs: string[]): string[] {
  return dirs
    .flatMap((d) =>
      (fs.existsSync(path.join(ROOT, d)) ? fs.readdirSync(path.join(ROOT, d), { recursive: true, encoding: 'utf8' }) : []).map((f) => `${d}/${f}`),
    )
    .map((f) => f.split(path.sep).join('/'))
    .filter((f) => CODE_FILE.test(f) && !f.endsWith('.d.ts') && fs.statSync(path.join(ROOT, f)).isFile())
    .sort();
}

/** The repo-relative file a relative specifier names; `.js` resolves to the `.ts` beside it. */
function resolve(from: string, specifier: string): string | null {
  if (!specifier.startsWith('.')) return null;
  const target = path.posix.normalize(path.posix.join(path.posix.dirname(from), specifier));
  if (target.endsWith('.js') && !fs.existsSync(path.join(ROOT, target)) && fs.existsSync(path.join(ROOT, target.replace(/\.js$/, '.ts')))) {
    return target.replace(/\.js$/, '.ts');
  }
  return target;
}

/** Every module a file's text refers to. A dynamic import whose specifier is not a literal has the specifier '<computed>'. */
function importsIn(file: string, text: string): Import[] {
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const out: Import[] = [];
  const add = (node: ts.Node, spec: ts.Node | undefined) => {
    const specifier = spec && ts.isStringLiteralLike(spec) ? spec.text : '<computed>';
    out.push({
      target: specifier === '<computed>' ? null : resolve(file, specifier),
      specifier,
      line: sf.getLineAndCharacterOfPosition(node.getStart()).line + 1,
    });
  };
  const visit = (node: ts.Node): void => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier) add(node, node.moduleSpecifier);
    else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) add(node, node.moduleReference.expression);
    else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) add(node, node.arguments[0]);
    else if (ts.isCallExpression(node) && ts.isIdentifier(node.expression) && node.expression.text === 'require') add(node, node.arguments[0]);
    else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) add(node, node.argument.literal);
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return out;
}

const files = codeFiles(CODE_DIRS);
const testFiles = codeFiles(['test']).filter((f) => !f.startsWith('test/fixtures/'));
const text = new Map([...files, ...testFiles].map((f) => [f, fs.readFileSync(path.join(ROOT, f), 'utf8')]));
const graph = new Map([...text].map(([f, t]) => [f, importsIn(f, t)]));

/**
 * The first chain of imports from `start` to a module `forbidden` accepts, or null. Each step is
 * shown as `file:line`, so a failure names the import to remove.
 */
function forbiddenChain(start: string, forbidden: (target: string) => boolean): string | null {
  const via = new Map<string, string>([[start, `${start}`]]);
  const queue = [start];
  for (let file = queue.shift(); file !== undefined; file = queue.shift()) {
    for (const imp of graph.get(file) ?? []) {
      if (imp.target === null || via.has(imp.target)) continue;
      const chain = `${via.get(file)}:${imp.line} -> ${imp.target}`;
      if (forbidden(imp.target)) return chain;
      via.set(imp.target, chain);
      queue.push(imp.target);
    }
  }
  return null;
}

/** One chain per offending import: files that reach it through others are not listed again. */
function violations(from: (file: string) => boolean, forbidden: (file: string, target: string) => boolean): string[] {
  const byImport = new Map<string, string>();
  for (const f of files.filter(from)) {
    const chain = forbiddenChain(f, (t) => forbidden(f, t));
    const last = chain?.split(' -> ').slice(-2).join(' -> ');
    if (chain && last && (byImport.get(last)?.length ?? Infinity) > chain.length) byImport.set(last, chain);
  }
  return [...byImport.values()];
}

/** `providers/<name>/…` → name; null for providers/types.ts, providers/index.ts and everything outside providers/. */
function providerOf(file: string): string | null {
  const m = /^providers\/([^/]+)\//.exec(file);
  return m ? m[1]! : null;
}

function isEmulator(file: string): boolean {
  return /^providers\/[^/]+\/emulator(\/|[^/]*\.[a-z]+$)/.test(file);
}

describe('the import parser', () => {
  it('sees every form of import, type-only ones included', () => {
    const source = [
      "import a from './a.ts';",
      "import type { B } from '../b.ts';",
      "import './side-effect.ts';",
      "export { c } from './c.ts';",
      "export * from './d.js';",
      "import e = require('./e.ts');",
      "const f = await import('./f.ts');",
      'const g = await import(name);',
      "let h: import('./h.ts').H;",
      "const i = require('node:fs');",
    ].join('\n');
    expect(importsIn('src/x/y.ts', source).map((i) => [i.specifier, i.target, i.line])).toEqual([
      ['./a.ts', 'src/x/a.ts', 1],
      ['../b.ts', 'src/b.ts', 2],
      ['./side-effect.ts', 'src/x/side-effect.ts', 3],
      ['./c.ts', 'src/x/c.ts', 4],
      ['./d.js', 'src/x/d.js', 5],
      ['./e.ts', 'src/x/e.ts', 6],
      ['./f.ts', 'src/x/f.ts', 7],
      ['<computed>', null, 8],
      ['./h.ts', 'src/x/h.ts', 9],
      ['node:fs', null, 10],
    ]);
  });

  it('reads the tree: the engine, the state and every provider are found, with their imports', () => {
    expect(files.filter((f) => f.startsWith('src/engine/')).length).toBeGreaterThan(5);
    expect(files.filter((f) => f.startsWith('state/')).length).toBeGreaterThan(1);
    expect(new Set(files.map(providerOf).filter((p) => p !== null))).toEqual(new Set(['folder', 'xiaomi', 'onedrive', 'google-photos']));
    expect(graph.get(DELETION)?.some((i) => i.target === SOURCE_CONTRACT)).toBe(true);
    expect(files.filter(isEmulator).length).toBeGreaterThanOrEqual(3);
  });

  it('finds no dynamic import it cannot read in the engine, the state or a provider', () => {
    const unread = files
      .filter((f) => /^(src\/engine|state|providers)\//.test(f))
      .flatMap((f) => (graph.get(f) ?? []).filter((i) => i.specifier === '<computed>').map((i) => `${f}:${i.line}`));
    expect(unread).toEqual([]);
  });
});

describe('the import rules of DEVELOPERS.md', () => {
  it('src/engine imports nothing from providers/ but providers/types.ts', () => {
    expect(
      violations(
        (f) => f.startsWith('src/engine/'),
        (_f, t) => t.startsWith('providers/') && t !== SOURCE_CONTRACT,
      ),
    ).toEqual([]);
  });

  it('no provider imports another provider', () => {
    expect(
      violations(
        (f) => providerOf(f) !== null,
        (f, t) => providerOf(t) !== null && providerOf(t) !== providerOf(f),
      ),
    ).toEqual([]);
  });

  it('a provider imports from src/ only src/lib, src/hash, src/media (and its emulator src/emulator)', () => {
    const allowed = /^src\/(lib|hash|media|emulator)\//;
    const direct = files
      .filter((f) => providerOf(f) !== null)
      .flatMap((f) => (graph.get(f) ?? []).filter((i) => i.target?.startsWith('src/') && !allowed.test(i.target)).map((i) => `${f}:${i.line} -> ${i.target}`));
    expect(direct).toEqual([]);
  });

  it('state/ imports neither the engine nor a provider', () => {
    expect(
      violations(
        (f) => f.startsWith('state/'),
        (_f, t) => t.startsWith('src/engine/') || providerOf(t) !== null || t === 'providers/index.ts',
      ),
    ).toEqual([]);
  });

  it("an emulator never imports its provider's client code: of its provider, only its own emulator files and the protocol constants", () => {
    const clientOf = (f: string, t: string) => providerOf(t) === providerOf(f) && !isEmulator(t) && !/^providers\/[^/]+\/([a-z-]+-)?protocol\.ts$/.test(t);
    expect(violations(isEmulator, clientOf)).toEqual([]);
  });

  it("only src/engine/deletion.ts calls a Source's delete, in the code a user runs (bench/ and scripts/ drive emulators as tests do)", () => {
    // The project's own files only: the Source contract and every caller are among them, and
    // leaving out the packages' types (googleapis's alone are huge) makes this three times cheaper.
    const program = ts.createProgram(
      files.filter((f) => f.endsWith('.ts')).map((f) => path.join(ROOT, f)),
      { ...compilerOptions(), noEmit: true, noResolve: true, types: [] },
    );
    const checker = program.getTypeChecker();
    const contract = program.getSourceFile(path.join(ROOT, SOURCE_CONTRACT));
    const sourceInterface = contract?.statements.find((s): s is ts.InterfaceDeclaration => ts.isInterfaceDeclaration(s) && s.name.text === 'Source');
    expect(sourceInterface, 'the Source interface in providers/types.ts').toBeDefined();
    const sourceSymbol = checker.getSymbolAtLocation(sourceInterface!.name);

    const resolved = (s: ts.Symbol | undefined) => (s && s.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(s) : s);
    const implementsSource = (cls: ts.ClassLikeDeclaration) =>
      (cls.heritageClauses ?? []).some(
        (h) => h.token === ts.SyntaxKind.ImplementsKeyword && h.types.some((t) => resolved(checker.getSymbolAtLocation(t.expression)) === sourceSymbol),
      );
    /** A `delete` declared by the Source contract or by a class that implements it. */
    const isSourceDelete = (decl: ts.Declaration) =>
      decl.parent === sourceInterface || ((ts.isClassDeclaration(decl.parent) || ts.isClassExpression(decl.parent)) && implementsSource(decl.parent));

    const uses: string[] = [];
    for (const sf of program.getSourceFiles()) {
      const rel = path.relative(ROOT, sf.fileName).split(path.sep).join('/');
      if (!SHIPPED.test(rel)) continue;
      const visit = (node: ts.Node): void => {
        const name = ts.isPropertyAccessExpression(node) ? node.name : ts.isElementAccessExpression(node) ? node.argumentExpression : undefined;
        if (name && (ts.isIdentifier(name) || ts.isStringLiteralLike(name)) && name.text === 'delete') {
          const decls = checker.getSymbolAtLocation(name)?.declarations ?? [];
          if (decls.some(isSourceDelete)) uses.push(`${rel}:${sf.getLineAndCharacterOfPosition(node.getStart()).line + 1}`);
        }
        ts.forEachChild(node, visit);
      };
      visit(sf);
    }
    // The deletion rule's own call is found (so the search works), and it is the only one.
    expect(uses.some((u) => u.startsWith(`${DELETION}:`))).toBe(true);
    expect(uses.filter((u) => !u.startsWith(`${DELETION}:`))).toEqual([]);
  });
});

function compilerOptions(): ts.CompilerOptions {
  const config = ts.readConfigFile(path.join(ROOT, 'tsconfig.json'), ts.sys.readFile);
  return ts.parseJsonConfigFileContent(config.config, ts.sys, ROOT).options;
}

/** Where a file names the CLI's entry point or the helpers that spawn it (`runCli`, `CLI`). */
function cliUses(file: string): string[] {
  const sf = ts.createSourceFile(file, text.get(file) ?? '', ts.ScriptTarget.Latest, true);
  const out: string[] = [];
  const visit = (node: ts.Node): void => {
    const names = ts.isIdentifier(node) && (node.text === 'runCli' || node.text === 'CLI');
    const entry = (ts.isStringLiteralLike(node) || ts.isTemplateLiteralToken(node)) && node.text.includes('gallery-bridge.js');
    if (names || entry) out.push(`${file}:${sf.getLineAndCharacterOfPosition(node.getStart()).line + 1} ${node.getText()}`);
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return out;
}

describe('the unit tier (test/tiers.ts)', () => {
  it('lists test files that exist', () => {
    expect(UNIT_TESTS.filter((f) => !testFiles.includes(f))).toEqual([]);
  });

  it('never spawns the CLI: no unit test file names it, nor imports code that does (test/helpers.ts only defines runCli)', () => {
    // This file names them only to look for them.
    const direct = UNIT_TESTS.filter((f) => f !== 'test/import-rules.test.ts').flatMap(cliUses);
    const spawners = new Set([...text.keys()].filter((f) => f !== 'test/helpers.ts' && !f.endsWith('.test.ts') && cliUses(f).length > 0));
    const reached = UNIT_TESTS.flatMap((f) => forbiddenChain(f, (t) => spawners.has(t)) ?? []);
    expect(spawners.size, 'the search finds scripts/chaos, which spawns the CLI').toBeGreaterThan(0);
    expect([...direct, ...reached]).toEqual([]);
  });
});
