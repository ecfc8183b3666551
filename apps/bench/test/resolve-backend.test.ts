import { mkdirSync, mkdtempSync, realpathSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  BackendNotFoundError,
  backendCandidates,
  defaultResolver,
  resolveBackend,
  resolvePackageEsm,
} from '../src/resolve-backend.js';

function notFound(s: string): never {
  const e = new Error(`Cannot find package '${s}'`) as Error & { code: string };
  e.code = 'ERR_MODULE_NOT_FOUND';
  throw e;
}

describe('backendCandidates', () => {
  it('tries @iommulab/hw-<name>, then iommulab-backend-<name>, then the literal', () => {
    expect(backendCandidates('mock')).toEqual(['@iommulab/hw-mock', 'iommulab-backend-mock', 'mock']);
    expect(backendCandidates('smmu-v3')).toEqual(['@iommulab/hw-smmu-v3', 'iommulab-backend-smmu-v3', 'smmu-v3']);
  });
  it('uses scoped names, sub-paths, paths and URLs literally', () => {
    for (const s of ['@acme/iommu', 'pkg/sub', './x.js', '/abs/x.js', 'file:///x.js']) {
      expect(backendCandidates(s)).toEqual([s]);
    }
  });
});

describe('resolveBackend', () => {
  it('takes the first candidate that resolves', () => {
    const tried: string[] = [];
    const resolver = (s: string): string => {
      tried.push(s);
      return s === 'iommulab-backend-acme' ? 'file:///nm/iommulab-backend-acme/index.js' : notFound(s);
    };
    expect(resolveBackend('acme', { resolver })).toEqual({
      name: 'acme',
      matched: 'iommulab-backend-acme',
      url: 'file:///nm/iommulab-backend-acme/index.js',
      tried: ['@iommulab/hw-acme', 'iommulab-backend-acme'],
    });
    expect(tried).toEqual(['@iommulab/hw-acme', 'iommulab-backend-acme']);
  });

  it('prefers @iommulab/hw-<name> when both exist', () => {
    const r = resolveBackend('mock', { resolver: (s) => `file:///nm/${s}/index.js` });
    expect(r.matched).toBe('@iommulab/hw-mock');
  });

  it('falls back to the literal name', () => {
    const r = resolveBackend('plain', { resolver: (s) => (s === 'plain' ? 'file:///nm/plain/i.js' : notFound(s)) });
    expect([r.matched, r.url]).toEqual(['plain', 'file:///nm/plain/i.js']);
  });

  it('names every candidate when none resolves', () => {
    expect(() => resolveBackend('nope', { resolver: notFound })).toThrow(BackendNotFoundError);
    expect(() => resolveBackend('nope', { resolver: notFound })).toThrow(
      "backend 'nope' not found; tried '@iommulab/hw-nope', 'iommulab-backend-nope', 'nope'",
    );
  });

  it('turns paths into file URLs relative to cwd and passes URLs through', () => {
    expect(resolveBackend('./b/x.js', { cwd: '/work/dir', resolver: notFound }).url).toBe('file:///work/dir/b/x.js');
    expect(resolveBackend('/abs/x.js', { resolver: notFound }).url).toBe('file:///abs/x.js');
    expect(resolveBackend('file:///y/z.js', { resolver: notFound }).url).toBe('file:///y/z.js');
  });

  it('resolves the real mock shorthand to a file inside @iommulab/hw-mock', () => {
    const r = resolveBackend('mock');
    expect(r.matched).toBe('@iommulab/hw-mock');
    expect(r.url).toMatch(/^file:\/\/\/.*\/packages\/hw-mock\/(src\/index\.ts|dist\/index\.js)$/);
  });

  it('does not find an unknown shorthand with the default resolver', () => {
    expect(() => resolveBackend('no-such-backend-xyz')).toThrow(BackendNotFoundError);
    expect(() => defaultResolver('@iommulab/hw-no-such-backend-xyz')).toThrow();
  });
});

describe('resolvePackageEsm', () => {
  it('applies exports conditions in the package order and sub-paths', () => {
    const root = realpathSync(mkdtempSync(join(tmpdir(), 'bench-resolve-')));
    const pkg = join(root, 'node_modules', '@x', 'be');
    mkdirSync(join(pkg, 'dist'), { recursive: true });
    mkdirSync(join(pkg, 'src'), { recursive: true });
    for (const f of ['dist/index.js', 'dist/index.cjs', 'src/index.ts', 'dist/extra.js']) writeFileSync(join(pkg, f), '');
    writeFileSync(
      join(pkg, 'package.json'),
      JSON.stringify({
        name: '@x/be',
        exports: {
          '.': { src: './src/index.ts', import: './dist/index.js', require: './dist/index.cjs' },
          './extra': './dist/extra.js',
        },
      }),
    );
    const from = join(root, 'app', 'src');
    mkdirSync(from, { recursive: true });
    const url = (f: string): string => pathToFileURL(join(pkg, f)).href;
    expect(resolvePackageEsm('@x/be', from, ['node', 'import', 'default'])).toBe(url('dist/index.js'));
    expect(resolvePackageEsm('@x/be', from, ['src', 'import'])).toBe(url('src/index.ts'));
    expect(resolvePackageEsm('@x/be/extra', from, ['import'])).toBe(url('dist/extra.js'));
    expect(() => resolvePackageEsm('@x/be/missing', from, ['import'])).toThrow(/no export/);
    expect(() => resolvePackageEsm('@x/none', from, ['import'])).toThrow(/no node_modules/);
  });
});

describe('defaultResolver from the working directory', () => {
  it('finds a backend installed only in the project the bench runs in', () => {
    const root = realpathSync(mkdtempSync(join(tmpdir(), 'bench-cwd-')));
    const pkg = join(root, 'node_modules', 'iommulab-backend-zz');
    mkdirSync(pkg, { recursive: true });
    writeFileSync(join(pkg, 'index.js'), 'export default {};\n');
    writeFileSync(join(pkg, 'package.json'), JSON.stringify({ name: 'iommulab-backend-zz', exports: './index.js' }));
    const r = resolveBackend('zz', { cwd: root });
    expect([r.matched, r.url]).toEqual(['iommulab-backend-zz', pathToFileURL(join(pkg, 'index.js')).href]);
  });
});
