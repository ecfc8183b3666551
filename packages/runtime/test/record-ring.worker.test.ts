import { describe, it, expect } from 'vitest';
import { RecordRing } from '../src/record-ring.js';
import { spawnTs, firstMessage } from './fixtures/spawn.js';

const PEER = new URL('./fixtures/ring-peer.ts', import.meta.url);

function word(i: number, w: number): number {
  return (i * 0x9e3779b1 + w * 0x85ebca6b) >>> 0;
}

describe('RecordRing across threads (real worker_threads Worker)', () => {
  it('main produces, worker consumes 200k 16-byte records in order', async () => {
    const ring = RecordRing.create({ entries: 256, recordBytes: 16 });
    const total = 200_000;
    const w = spawnTs(PEER, { handle: ring.handle, role: 'consume', total, batch: 64 });
    const done = firstMessage<{ got: number; bad: number; timeouts: number }>(w);
    const rw = ring.recordWords;
    const batch = 100;
    const buf = new Uint32Array(batch * rw);
    let sent = 0;
    while (sent < total) {
      const k = Math.min(batch, total - sent);
      for (let r = 0; r < k; r++) for (let x = 0; x < rw; x++) buf[r * rw + x] = word(sent + r, x);
      let pushed = 0;
      while (pushed < k) {
        const n = ring.pushBatch(buf, k - pushed, pushed);
        pushed += n;
        if (n === 0) expect(await ring.waitForSpaceAsync(5000)).toBe('ok');
      }
      sent += k;
    }
    const res = await done;
    await w.terminate();
    expect(res).toEqual({ got: total, bad: -1, timeouts: 0 });
    expect(ring.isEmpty()).toBe(true);
    expect(ring.prod).toBe(ring.cons);
  });

  it('worker produces 32-byte records, main consumes with waitForDataAsync', async () => {
    const ring = RecordRing.create({ entries: 64, recordBytes: 32 });
    const total = 100_000;
    const w = spawnTs(PEER, { handle: ring.handle, role: 'produce', total, batch: 50 });
    const done = firstMessage<{ sent: number; timeouts: number }>(w);
    const rw = ring.recordWords;
    const out = new Uint32Array(128 * rw);
    let got = 0;
    let bad = -1;
    while (got < total) {
      const n = ring.popBatch(out, 128);
      if (n === 0) {
        expect(await ring.waitForDataAsync(5000)).toBe('ok');
        continue;
      }
      for (let r = 0; r < n && bad < 0; r++) {
        for (let x = 0; x < rw; x++) if (out[r * rw + x] !== word(got + r, x)) bad = got + r;
      }
      got += n;
    }
    const res = await done;
    await w.terminate();
    expect(bad).toBe(-1);
    expect(got).toBe(total);
    expect(res).toEqual({ sent: total, timeouts: 0 });
  });
});
