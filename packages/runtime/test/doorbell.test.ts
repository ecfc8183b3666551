import { describe, it, expect } from 'vitest';
import { Doorbell, waitUntil } from '../src/doorbell.js';
import { RuntimeError } from '../src/errors.js';
import { spawnTs, firstMessage } from './fixtures/spawn.js';

function bell(): { i32: Int32Array; db: Doorbell } {
  const i32 = new Int32Array(new SharedArrayBuffer(16));
  return { i32, db: new Doorbell(i32, 1) };
}

describe('Doorbell', () => {
  it('ring bumps the generation word', () => {
    const { i32, db } = bell();
    expect(db.value).toBe(0);
    db.ring();
    db.ring();
    expect(db.value).toBe(2);
    expect(i32[1]).toBe(2);
    expect(i32[0]).toBe(0);
  });

  it('wait returns not-equal / timed-out', () => {
    const { db } = bell();
    db.ring();
    expect(db.wait(0, 10)).toBe('not-equal');
    expect(db.wait(1, 1)).toBe('timed-out');
  });

  it('waitAsync resolves ok on a ring, not-equal when stale, timed-out otherwise', async () => {
    const { db } = bell();
    expect(await db.waitAsync(5, 10)).toBe('not-equal');
    expect(await db.waitAsync(0, 5)).toBe('timed-out');
    const p = db.waitAsync(0, 5000);
    setTimeout(() => db.ring(), 5);
    expect(await p).toBe('ok');
  });

  it('rejects bad construction and timeouts', () => {
    const sab = new SharedArrayBuffer(8);
    expect(() => new Doorbell(new Int32Array(sab), 2)).toThrow(RuntimeError);
    expect(() => new Doorbell(new Int32Array(8), 0)).toThrow(/SharedArrayBuffer/);
    expect(() => new Doorbell(new Uint32Array(sab) as unknown as Int32Array, 0)).toThrow(RuntimeError);
    const db = new Doorbell(new Int32Array(sab), 1);
    expect(() => db.wait(0, -5)).toThrow(/-5/);
  });

  it('a worker parked in wait() is woken by ring() from the main thread', async () => {
    const { i32, db } = bell();
    const w = spawnTs(new URL('./fixtures/doorbell-peer.ts', import.meta.url), { i32 });
    const reply = firstMessage<{ result: string; ms: number }>(w);
    // wait until the worker announced it is about to park (word 2 = 1), then give it time to park
    await waitUntil(() => Atomics.load(i32, 2) === 1, { timeoutMs: 10_000, what: 'worker start' });
    await new Promise((r) => setTimeout(r, 30));
    db.ring();
    const res = await reply;
    await w.terminate();
    expect(res.result).toBe('ok');
    expect(res.ms).toBeLessThan(4000);
  });
});

describe('waitUntil', () => {
  it('resolves at once when the predicate already holds', async () => {
    await expect(waitUntil(() => true, { timeoutMs: 0 })).resolves.toBeUndefined();
  });

  it('resolves after a doorbell ring makes the predicate true', async () => {
    const { db } = bell();
    let flag = false;
    setTimeout(() => {
      flag = true;
      db.ring();
    }, 10);
    const t0 = performance.now();
    await waitUntil(() => flag, { doorbell: db, timeoutMs: 5000, what: 'flag' });
    expect(performance.now() - t0).toBeLessThan(1000);
  });

  it('polls without a doorbell', async () => {
    let n = 0;
    await waitUntil(() => ++n > 500, { timeoutMs: 5000, spin: 0 });
    expect(n).toBe(501);
  });

  it('notices a predicate that turned true without a ring', async () => {
    const { db } = bell();
    let flag = false;
    setTimeout(() => (flag = true), 10);
    await waitUntil(() => flag, { doorbell: db, timeoutMs: 5000 });
    expect(flag).toBe(true);
  });

  it('rejects with TIMEOUT naming what it waited for', async () => {
    const { db } = bell();
    const t0 = performance.now();
    const err = await waitUntil(() => false, { doorbell: db, timeoutMs: 30, what: 'CMD_SYNC' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RuntimeError);
    expect((err as RuntimeError).code).toBe('TIMEOUT');
    expect((err as RuntimeError).message).toMatch(/30 ms waiting for CMD_SYNC/);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(29);
    const err2 = await waitUntil(() => false, { timeoutMs: 10 }).catch((e: unknown) => e);
    expect((err2 as RuntimeError).code).toBe('TIMEOUT');
  });
});
