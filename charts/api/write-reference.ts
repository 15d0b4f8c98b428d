/** `npm run docs`: rewrites the generated API reference section of README.md. */
import { readFileSync, writeFileSync } from 'node:fs';
import { withApiReference } from './reference.js';

const path = new URL('../../README.md', import.meta.url);
writeFileSync(path, withApiReference(readFileSync(path, 'utf8')));
