/**
 * The start snapshot embedded in the bundle: build.ts replaces this module's text with the
 * snapshot it computes (start-snapshot.ts). Outside the bundle (tsx, jest) there is none, and the
 * stdio server answers `initialize` and `tools/list` from the real server only (stdio.ts).
 */
import type { StartSnapshot } from './start-answers.js';

export const BUNDLED_START_SNAPSHOT: StartSnapshot | undefined = undefined;
