/**
 * Number formatting for tables and progress lines. Deterministic (no locale): tests compare exact
 * strings.
 */

/** An integer with `,` thousands separators: `12345678` → `12,345,678`. */
export function formatCount(n: number): string {
  const neg = n < 0;
  const digits = String(Math.round(Math.abs(n)));
  let out = '';
  for (let i = 0; i < digits.length; i++) {
    if (i > 0 && (digits.length - i) % 3 === 0) out += ',';
    out += digits[i];
  }
  return neg ? `-${out}` : out;
}

const SI = [
  { div: 1e12, suffix: 'T' },
  { div: 1e9, suffix: 'G' },
  { div: 1e6, suffix: 'M' },
  { div: 1e3, suffix: 'k' },
] as const;

/**
 * A rate or large quantity with an SI suffix and three significant digits:
 * `25_123_456` → `25.1 M`, `999` → `999`, `1234` → `1.23 k`.
 */
export function formatSi(n: number): string {
  if (!Number.isFinite(n)) return '-';
  const abs = Math.abs(n);
  for (const { div, suffix } of SI) {
    if (abs >= div * 0.9995) return `${threeDigits(n / div)} ${suffix}`;
  }
  return threeDigits(n);
}

function threeDigits(v: number): string {
  const abs = Math.abs(v);
  if (abs >= 99.95) return v.toFixed(0);
  if (abs >= 9.995) return v.toFixed(1);
  if (abs === 0) return '0';
  return v.toFixed(2);
}

/** A ratio in [0, 1] as a percentage with two decimals, or `-` for null. */
export function formatPercent(ratio: number | null): string {
  return ratio === null ? '-' : `${(ratio * 100).toFixed(2)} %`;
}

/** Milliseconds with a unit: `0.412 ms`, `41.2 ms`, `1.23 s`. */
export function formatMs(ms: number): string {
  if (ms >= 1000) return `${(ms / 1000).toFixed(2)} s`;
  if (ms >= 100) return `${ms.toFixed(0)} ms`;
  if (ms >= 10) return `${ms.toFixed(1)} ms`;
  return `${ms.toFixed(2)} ms`;
}

/** A byte size in binary units: `2048` → `2 KiB`, `1048576` → `1 MiB`, `33554432` → `32 MiB`. */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${Number.isInteger(v) ? v : v.toFixed(1)} ${units[u]}`;
}

/** Microseconds with one decimal and a unit: `23.41` → `23.4 µs`; `-` for null. */
export function formatUs(us: number | null): string {
  return us === null || !Number.isFinite(us) ? '-' : `${us.toFixed(1)} µs`;
}
