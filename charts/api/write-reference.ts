/** `npm run docs`: rewrites the generated API reference section of docs/api.md. */
import { readFileSync, writeFileSync } from 'node:fs';
import { withApiReference } from './reference.js';

const path = new URL('../../docs/api.md', import.meta.url);
writeFileSync(path, withApiReference(readFileSync(path, 'utf8')));
