import { describe, expect, it } from 'vitest';
import { isLiveTerminal, plainProgress, progressBar, renderProgress } from '../src/progress.js';

describe('progress', () => {
  it('redraws live only on a TTY with rows, outside CI', () => {
    expect(isLiveTerminal({ isTTY: true, rows: 40 }, {})).toBe(true);
    expect(isLiveTerminal({ isTTY: true }, {})).toBe(true);
    expect(isLiveTerminal({ isTTY: true, rows: 0 }, {})).toBe(false);
    expect(isLiveTerminal({ isTTY: false, rows: 40 }, {})).toBe(false);
    expect(isLiveTerminal({}, {})).toBe(false);
    expect(isLiveTerminal({ isTTY: true, rows: 40 }, { CI: 'true' })).toBe(false);
    expect(isLiveTerminal({ isTTY: true, rows: 40 }, { CI: '1' })).toBe(false);
    expect(isLiveTerminal({ isTTY: true, rows: 40 }, { CI: 'false' })).toBe(true);
  });

  it('renders a plain frame', () => {
    expect(progressBar(1, 4)).toBe('[######..................]');
    expect(
      renderProgress({
        title: 'iommulab-bench: mock, 2 instances (worker)',
        elapsedMs: 1500,
        instances: [
          { id: 'mock-0', phase: 'sequential', done: 2_500_000, total: 10_000_000, rate: 5_120_000 },
          { id: 'mock-1', phase: 'done', done: 0, total: 0, rate: 0 },
        ],
      }),
    ).toBe(
      [
        'iommulab-bench: mock, 2 instances (worker)  1.5 s',
        '  mock-0    sequential  [######..................]  25 %  2,500,000/10,000,000  5.12 M/s',
        '  mock-1    done',
      ].join('\n'),
    );
  });

  it('plain mode prints one line per finished phase and ignores frames', () => {
    const lines: string[] = [];
    const p = plainProgress((l) => lines.push(l));
    p.update({ title: 't', elapsedMs: 0, instances: [] });
    p.phaseDone('[mock-0] map: done');
    p.stop();
    expect(lines).toEqual(['[mock-0] map: done']);
  });
});
