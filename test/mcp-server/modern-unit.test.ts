/**
 * Pure parts of `kubemcp serve`'s 2026-07-28 leg (mcp-server/modern.ts): the confirmation's
 * requestState binds an answer to its call (tool and arguments), the same on every replica.
 */
import { describe, expect, it } from '@jest/globals';
import { confirmState } from '../../mcp-server/modern.js';

describe('confirmState', () => {
  const args = { kind: 'configmap', name: 'doomed', namespace: 'team-a' };
  it('is the same for the same call, on any process (no secret, no memory)', () => {
    expect(confirmState('delete-resource', args)).toBe(confirmState('delete-resource', { ...args }));
    expect(confirmState('delete-resource', args)).toMatch(/^confirm\.[A-Za-z0-9_-]{43}$/);
  });
  it('differs when the tool or any argument differs', () => {
    const s = confirmState('delete-resource', args);
    expect(confirmState('exec-pod', args)).not.toBe(s);
    expect(confirmState('delete-resource', { ...args, name: 'other' })).not.toBe(s);
    expect(confirmState('delete-resource', { ...args, dryRun: false })).not.toBe(s);
  });
});
