/** Thrown by a conformance case whose expectation failed. */
export class ConformanceFailure extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConformanceFailure';
  }
}

/** Fails the case unless `actual` is strictly `expected`. */
export function checkEqual<T>(actual: T, expected: T, what: string): void {
  if (!Object.is(actual, expected)) {
    throw new ConformanceFailure(`${what}: expected ${fmt(expected)}, got ${fmt(actual)}`);
  }
}

/** Fails the case unless `cond` holds. */
export function check(cond: boolean, what: string): asserts cond {
  if (!cond) throw new ConformanceFailure(what);
}

/** Fails unless `fn` rejects/throws an error whose `errno` is `errno`. */
export async function checkErrno(fn: () => unknown, errno: string, what: string): Promise<void> {
  try {
    await fn();
  } catch (e) {
    const got = (e as { errno?: unknown }).errno;
    if (got === errno) return;
    throw new ConformanceFailure(`${what}: expected ${errno}, got ${String(got ?? e)}`);
  }
  throw new ConformanceFailure(`${what}: expected ${errno}, but the call succeeded`);
}

function fmt(v: unknown): string {
  return typeof v === 'number' ? `${v} (0x${v.toString(16)})` : String(v);
}
