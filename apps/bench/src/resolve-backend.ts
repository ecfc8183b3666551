/**
 * Turns `--backend` into a file URL the instance workers can `import()`. Workers do not share the
 * main thread's resolution context, so the bench resolves on the main thread and passes the URL.
 */
import { dirname, isAbsolute, resolve as resolvePath } from 'node:path';
import { activeConditions, resolvePackageEsm } from '@iommulab/runtime';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** Resolves a bare module specifier to a URL string, or throws when it cannot be found. */
export type SpecifierResolver = (specifier: string) => string;

/** Outcome of {@link resolveBackend}. */
export interface ResolvedBackend {
  /** What the user gave. */
  readonly name: string;
  /** The candidate that resolved (a package name, or the literal). */
  readonly matched: string;
  /** The URL to import (a `file:` URL for anything on disk). */
  readonly url: string;
  /** Every candidate tried, in order. */
  readonly tried: readonly string[];
}

/** A `--backend` value that no candidate resolved. */
export class BackendNotFoundError extends Error {
  /** Candidates tried, in order. */
  readonly tried: readonly string[];
  constructor(name: string, tried: readonly string[], causes: readonly string[]) {
    super(
      `backend '${name}' not found; tried ${tried.map((t) => `'${t}'`).join(', ')}` +
        (causes.length > 0 ? ` (${causes.join('; ')})` : ''),
    );
    this.name = 'BackendNotFoundError';
    this.tried = tried;
  }
}

const SHORTHAND = /^[a-z0-9][a-z0-9._-]*$/i;

/**
 * The module specifiers `--backend <name>` may mean, in the order they are tried:
 * `@iommulab/hw-<name>`, `iommulab-backend-<name>`, then the literal. Paths and URLs
 * (`./x.js`, `/abs/x.js`, `file:...`) and scoped or sub-path specifiers are only the literal.
 *
 * @param name - the `--backend` value
 */
export function backendCandidates(name: string): string[] {
  if (!SHORTHAND.test(name) || name.startsWith('.')) return [name];
  return [`@iommulab/hw-${name}`, `iommulab-backend-${name}`, name];
}

function isPathLike(s: string): boolean {
  return s.startsWith('./') || s.startsWith('../') || s === '.' || s === '..' || isAbsolute(s);
}

// The package-exports resolver is the runtime's (the same one InstanceHost uses for backend names).
export { activeConditions, resolvePackageEsm };

/**
 * The default resolver: `import.meta.resolve` from this module (so the bench's own dependencies,
 * such as `@iommulab/hw-mock`, are found, honouring the process's `--conditions`), or
 * {@link resolvePackageEsm} from this module's directory where `import.meta.resolve` is missing
 * (vitest); then, for a backend installed only in the user's project, {@link resolvePackageEsm}
 * from `cwd`.
 */
export function projectResolver(cwd: string = process.cwd()): SpecifierResolver {
  return (specifier: string): string => {
    const resolveFn = (import.meta as ImportMeta & { resolve?: (s: string) => string }).resolve;
    try {
      if (typeof resolveFn === 'function') return resolveFn(specifier);
      return resolvePackageEsm(specifier, dirname(fileURLToPath(import.meta.url)), activeConditions());
    } catch (e) {
      try {
        return resolvePackageEsm(specifier, cwd, activeConditions());
      } catch {
        throw e;
      }
    }
  };
}

/** {@link projectResolver} for the process's working directory. */
export const defaultResolver: SpecifierResolver = (specifier: string): string => projectResolver()(specifier);

/**
 * Resolves `--backend` to an importable URL: paths become file URLs (relative to `cwd`), URLs
 * pass through, and names go through {@link backendCandidates} with `resolver`.
 *
 * @param name - the `--backend` value
 * @param opts - `resolver` (default {@link projectResolver} of `cwd`) and `cwd` (default: the process's)
 * @throws BackendNotFoundError naming every candidate tried
 */
export function resolveBackend(
  name: string,
  opts: { readonly resolver?: SpecifierResolver; readonly cwd?: string } = {},
): ResolvedBackend {
  if (name.length === 0) throw new BackendNotFoundError(name, [], ['empty backend name']);
  if (isPathLike(name)) {
    const url = pathToFileURL(resolvePath(opts.cwd ?? process.cwd(), name)).href;
    return { name, matched: name, url, tried: [name] };
  }
  if (/^[a-z][a-z0-9+.-]*:/i.test(name) && !/^[a-z]:[\\/]/i.test(name)) {
    // Already a URL (file:, data:, node:...).
    return { name, matched: name, url: name, tried: [name] };
  }
  const resolver = opts.resolver ?? projectResolver(opts.cwd);
  const tried: string[] = [];
  const causes: string[] = [];
  for (const candidate of backendCandidates(name)) {
    tried.push(candidate);
    try {
      return { name, matched: candidate, url: resolver(candidate), tried };
    } catch (e) {
      const code = (e as { code?: unknown }).code;
      if (code !== 'ERR_MODULE_NOT_FOUND' && code !== 'MODULE_NOT_FOUND' && code !== 'ERR_PACKAGE_PATH_NOT_EXPORTED') {
        causes.push(`${candidate}: ${(e as Error).message}`);
      }
    }
  }
  throw new BackendNotFoundError(name, tried, causes);
}
