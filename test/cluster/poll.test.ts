/**
 * cluster/process.ts's pollProgress, the wait that follows progress (issue 20): it keeps waiting
 * while the probe's state changes, fails when the state stands still for idleMs or after maxMs,
 * and names the last state. Pure logic with a scripted probe: no cluster.
 */
import { describe, expect, it } from '@jest/globals';
import { pollProgress } from '../../cluster/process.js';

describe('pollProgress', () => {
  it('waits past idleMs while the state keeps changing, and returns the done value', async () => {
    let n = 0;
    const seen: string[] = [];
    const value = await pollProgress(
      'a slow thing',
      async () => (++n >= 8 ? { done: 'ok', state: '' } : { state: `step ${n}` }),
      { idleMs: 30, maxMs: 5_000, intervalMs: 10, onState: (s) => seen.push(s) },
    );
    expect(value).toBe('ok');
    expect(n).toBe(8); // 7 changing states, 70 ms in all: more than idleMs, never idle that long
    expect(seen).toEqual(['step 1', 'step 2', 'step 3', 'step 4', 'step 5', 'step 6', 'step 7']);
  });

  it('fails with the last state when nothing moves for idleMs', async () => {
    let n = 0;
    await expect(
      pollProgress('the Lease', async () => ({ state: n++ < 2 ? `pod Pending (${n})` : 'pod Running, not ready' }), {
        idleMs: 50,
        maxMs: 5_000,
        intervalMs: 10,
      }),
    ).rejects.toThrow('no progress for 50 ms waiting for the Lease; last state: pod Running, not ready');
  });

  it('gives up after maxMs even while the state changes, and reports a throwing probe as its state', async () => {
    let n = 0;
    await expect(
      pollProgress('a flapping thing', async () => ({ state: `s${n++}` }), {
        idleMs: 1_000,
        maxMs: 60,
        intervalMs: 10,
      }),
    ).rejects.toThrow(/gave up after 60 ms waiting for a flapping thing; last state: s\d+/);
    await expect(
      pollProgress(
        'an erroring probe',
        async () => {
          throw new Error('connection refused');
        },
        { idleMs: 30, maxMs: 5_000, intervalMs: 10 },
      ),
    ).rejects.toThrow('no progress for 30 ms waiting for an erroring probe; last state: error: connection refused');
  });
});
