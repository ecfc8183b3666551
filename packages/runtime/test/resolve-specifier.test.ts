import { fileURLToPath, pathToFileURL } from 'node:url';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { activeConditions, resolveBackendSpecifier, resolvePackageEsm } from '../src/index.js';

const packages = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const hwMockDir = join(packages, 'hw-mock');

describe('backend specifiers are resolved on the host thread, from the user side', () => {
  it('a package name resolves through node_modules and the exports map (import condition)', () => {
    expect(resolvePackageEsm('@iommulab/driver-api', hwMockDir, ['node', 'import', 'default'])).toBe(
      pathToFileURL(join(packages, 'driver-api', 'dist', 'index.js')).href,
    );
    expect(resolvePackageEsm('@iommulab/driver-api/conformance', hwMockDir, ['import', 'default'])).toBe(
      pathToFileURL(join(packages, 'driver-api', 'dist', 'conformance', 'index.js')).href,
    );
  });

  it('under the source condition a workspace package resolves to its TypeScript entry', () => {
    expect(activeConditions('file:///x/resolve-specifier.ts', [])).toEqual(['@iommulab/source', 'node', 'import', 'default']);
    expect(activeConditions('file:///x/index.js', [])).toEqual(['node', 'import', 'default']);
    expect(activeConditions('file:///x/index.js', ['--conditions=@iommulab/source'])[0]).toBe('@iommulab/source');
    expect(resolvePackageEsm('@iommulab/driver-api', hwMockDir, activeConditions('file:///x/a.ts', []))).toBe(
      pathToFileURL(join(packages, 'driver-api', 'src', 'index.ts')).href,
    );
  });

  it('a package not visible from the start directory is not found, with ERR_MODULE_NOT_FOUND', () => {
    expect(() => resolvePackageEsm('@iommulab/hw-mock', join(packages, 'runtime'), ['import'])).toThrow(
      expect.objectContaining({ code: 'ERR_MODULE_NOT_FOUND' }),
    );
    expect(() => resolvePackageEsm('@iommulab/driver-api/nope', hwMockDir, ['import'])).toThrow(/no export for '.\/nope'/);
  });

  it('resolveBackendSpecifier: URLs unchanged, paths to file URLs, names from `from`, unknown names unchanged', () => {
    expect(resolveBackendSpecifier('file:///a/b.js')).toBe('file:///a/b.js');
    expect(resolveBackendSpecifier('/a/b.js')).toBe('file:///a/b.js');
    const fromUrl = pathToFileURL(join(hwMockDir, 'test', 'x.test.ts')).href;
    expect(resolveBackendSpecifier('@iommulab/driver-api', fromUrl)).toMatch(/\/packages\/driver-api\/(src\/index\.ts|dist\/index\.js)$/);
    expect(resolveBackendSpecifier('@iommulab/driver-api', hwMockDir)).toMatch(/\/packages\/driver-api\//);
    expect(resolveBackendSpecifier('no-such-backend-package-xyz', hwMockDir)).toBe('no-such-backend-package-xyz');
  });
});
