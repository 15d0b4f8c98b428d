/**
 * The kubemcp image's inputs come from the Dockerfile's COPY lines (images/dockerfile.ts): the
 * parser on the forms Docker documents, and on the repository's own Dockerfile. Pure; no cluster.
 */
import { describe, expect, it } from '@jest/globals';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { dockerfileContextSources } from '../../images/dockerfile.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

describe('dockerfileContextSources', () => {
  it('reads shell and exec forms, flags, continuations and ADD; skips --from, comments and duplicates', () => {
    const text = [
      'FROM node:20 AS build',
      '# COPY commented ./out',
      'COPY package.json package-lock.json ./',
      'COPY --chown=1:1 ./build/ ./build',
      'COPY ["cli.ts", "main.ts", "./"]',
      'ADD charts \\',
      '    controller /src/',
      'copy package.json /again',
      'FROM node:20',
      'COPY --from=build /src/dist ./dist',
      'RUN echo COPY nothing here',
    ].join('\n');
    expect(dockerfileContextSources(text)).toEqual([
      'package.json',
      'package-lock.json',
      'build',
      'cli.ts',
      'main.ts',
      'charts',
      'controller',
    ]);
  });

  it('refuses sources outside the build context and instructions without a destination', () => {
    expect(() => dockerfileContextSources('COPY ../secret /x')).toThrow(/source \.\.\/secret leaves the build context/);
    expect(() => dockerfileContextSources('COPY /etc/passwd /x')).toThrow(
      /source \/etc\/passwd is not a path in the build context/,
    );
    expect(() => dockerfileContextSources('ADD https://example.com/a.tgz /x')).toThrow(
      /is not a path in the build context/,
    );
    expect(() => dockerfileContextSources('COPY onlyone')).toThrow(
      /instruction 1 \(COPY\): needs a source and a destination/,
    );
  });

  it("lists what the repository's Dockerfile copies, each of which exists", () => {
    const sources = dockerfileContextSources(readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8'));
    expect(sources).toEqual([
      'package.json',
      'package-lock.json',
      'tsconfig.json',
      'tsconfig.build.json',
      'build.ts',
      'build',
      'cli.ts',
      'charts',
      'controller',
      'mcp-server',
      'gateway',
      'lib',
      'imports',
    ]);
    for (const s of sources) expect(existsSync(path.join(ROOT, s))).toBe(true);
  });
});
