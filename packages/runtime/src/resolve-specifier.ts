/**
 * Resolution of backend module specifiers on the host thread. An instance worker `import()`s the
 * backend itself, from the runtime's own location, where a package the *user* depends on may not
 * be visible (pnpm's strict node_modules). So bare specifiers are resolved here, from the user's
 * side (their module URL, or the working directory), to a `file:` URL any thread can import.
 */
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve as resolvePath } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/**
 * Export conditions used to resolve a package entry: `node`, `import`, `default`, plus
 * `@iommulab/source` when this process runs the workspace from TypeScript source (the runtime's
 * own module is a `.ts` file, or node was started with `--conditions=@iommulab/source`).
 */
export function activeConditions(here: string = import.meta.url, execArgv: readonly string[] = process.execArgv): string[] {
  const out = ['node', 'import', 'default'];
  const fromSource =
    here.split(/[?#]/, 1)[0].endsWith('.ts') ||
    execArgv.some((a) => a === '--conditions=@iommulab/source' || a === '-C=@iommulab/source');
  if (fromSource) out.unshift('@iommulab/source');
  return out;
}

function pickExport(target: unknown, conditions: readonly string[]): string | null {
  if (typeof target === 'string') return target;
  if (Array.isArray(target)) {
    for (const t of target) {
      const r = pickExport(t, conditions);
      if (r !== null) return r;
    }
    return null;
  }
  if (target !== null && typeof target === 'object') {
    // Conditions are tried in the package's key order (Node's rule), keeping those we accept.
    for (const [key, value] of Object.entries(target as Record<string, unknown>)) {
      if (conditions.includes(key)) {
        const r = pickExport(value, conditions);
        if (r !== null) return r;
      }
    }
  }
  return null;
}

function notFound(specifier: string, why: string): Error {
  const e = new Error(`cannot resolve '${specifier}': ${why}`) as Error & { code: string };
  e.code = 'ERR_MODULE_NOT_FOUND';
  return e;
}

/**
 * A small ESM resolver for bare package specifiers: finds `node_modules/<name>` walking up from
 * `fromDir`, then applies the package's `exports` (exact subpaths and conditions, no patterns)
 * or `main`. Returns a `file:` URL; throws an `ERR_MODULE_NOT_FOUND` error otherwise.
 *
 * @param specifier - `name` or `name/sub/path` (scoped names included)
 * @param fromDir - directory where the lookup starts
 * @param conditions - accepted export conditions (default {@link activeConditions})
 */
export function resolvePackageEsm(
  specifier: string,
  fromDir: string,
  conditions: readonly string[] = activeConditions(),
): string {
  const parts = specifier.split('/');
  const nameLen = specifier.startsWith('@') ? 2 : 1;
  const name = parts.slice(0, nameLen).join('/');
  const subpath = parts.length > nameLen ? `./${parts.slice(nameLen).join('/')}` : '.';
  for (let dir = fromDir; ; ) {
    const pkgDir = join(dir, 'node_modules', name);
    if (existsSync(join(pkgDir, 'package.json'))) {
      const real = realpathSync(pkgDir);
      const pkg = JSON.parse(readFileSync(join(real, 'package.json'), 'utf8')) as { exports?: unknown; main?: string };
      let target: string | null;
      if (pkg.exports !== undefined) {
        const exp = pkg.exports;
        const isMap =
          exp !== null && typeof exp === 'object' && !Array.isArray(exp) && Object.keys(exp).some((k) => k.startsWith('.'));
        const entry = isMap ? (exp as Record<string, unknown>)[subpath] : subpath === '.' ? exp : undefined;
        target = entry === undefined ? null : pickExport(entry, conditions);
        if (target === null) throw notFound(specifier, `no export for '${subpath}' under conditions ${conditions.join(', ')}`);
      } else {
        target = subpath === '.' ? (pkg.main ?? 'index.js') : subpath;
      }
      const file = resolvePath(real, target);
      if (!existsSync(file)) throw notFound(specifier, `${file} does not exist`);
      return pathToFileURL(file).href;
    }
    const parent = dirname(dir);
    if (parent === dir) throw notFound(specifier, `no node_modules/${name} above ${fromDir}`);
    dir = parent;
  }
}

/** True for specifiers that are not bare package names (URLs, absolute or relative paths, builtins). */
function isBare(specifier: string): boolean {
  return !(
    /^[a-z][a-z0-9+.-]*:/i.test(specifier) ||
    isAbsolute(specifier) ||
    specifier.startsWith('./') ||
    specifier.startsWith('../')
  );
}

/**
 * Turns a backend specifier into something every thread can `import()`:
 * - URLs (`file:`, `data:`, `node:`) are returned unchanged; absolute paths become `file:` URLs;
 * - bare package names are resolved from `from` (a module URL or a directory; default the working
 *   directory), then from the runtime's own location; if neither finds it, the specifier is
 *   returned unchanged and the importing thread's own resolution decides.
 *
 * @param specifier - package name, file URL or absolute path
 * @param from - where the user's code lives: `import.meta.url` of the caller, or a directory
 */
export function resolveBackendSpecifier(specifier: string, from?: string | URL): string {
  if (typeof specifier !== 'string' || specifier.length === 0) return specifier;
  if (isAbsolute(specifier)) return pathToFileURL(specifier).href;
  if (!isBare(specifier)) return specifier;
  const bases: string[] = [];
  if (from !== undefined) {
    const f = String(from);
    bases.push(f.startsWith('file:') ? dirname(fileURLToPath(f)) : f);
  } else {
    bases.push(process.cwd());
  }
  const here = import.meta.url;
  if (here.startsWith('file:')) bases.push(dirname(fileURLToPath(here)));
  for (const base of bases) {
    try {
      return resolvePackageEsm(specifier, base);
    } catch {
      // try the next base
    }
  }
  return specifier;
}
