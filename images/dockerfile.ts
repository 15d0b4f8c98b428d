/**
 * What a Dockerfile reads from its build context: the sources of its COPY and ADD instructions
 * (those without `--from`, which copy from another stage or image). Pure text parsing, no I/O.
 * Syntax: https://docs.docker.com/reference/dockerfile/#copy (shell form `COPY [--flag...] <src>...
 * <dest>`, exec form `COPY [--flag...] ["<src>", ... "<dest>"]`, `\` line continuations, `#`
 * comment lines).
 *
 * @module
 */

/**
 * The build-context paths the COPY/ADD instructions of `dockerfile` (its text) use, in order of
 * first use, without duplicates, normalised (`./build/` -> `build`; `.` stays `.`).
 * @throws Error naming the line when an instruction has no source and destination, or a source
 *   is an absolute path, leaves the context (`..`) or is a URL (ADD's remote sources).
 */
export function dockerfileContextSources(dockerfile: string): string[] {
  const out: string[] = [];
  const logical = dockerfile
    .split('\n')
    .filter((l) => !/^\s*#/.test(l))
    .join('\n')
    .replace(/\\\r?\n/g, ' ')
    .split('\n');
  for (const [i, raw] of logical.entries()) {
    const m = /^\s*(COPY|ADD)\s+(.*)$/i.exec(raw);
    if (!m) continue;
    let rest = m[2]!.trim();
    const flags: string[] = [];
    for (let f = /^--\S+\s*/.exec(rest); f; f = /^--\S+\s*/.exec(rest)) {
      flags.push(f[0].trim());
      rest = rest.slice(f[0].length);
    }
    if (flags.some((f) => f.startsWith('--from'))) continue;
    const words = rest.startsWith('[') ? (JSON.parse(rest) as string[]) : rest.split(/\s+/).filter(Boolean);
    if (words.length < 2)
      throw new Error(`Dockerfile instruction ${i + 1} (${m[1]}): needs a source and a destination: ${raw.trim()}`);
    for (const src of words.slice(0, -1)) {
      if (src.startsWith('/') || /^[a-z][a-z0-9+.-]*:\/\//i.test(src))
        throw new Error(`Dockerfile instruction ${i + 1}: source ${src} is not a path in the build context`);
      const norm = src.replace(/^(\.\/)+/, '').replace(/\/+$/, '') || '.';
      if (norm === '..' || norm.startsWith('../'))
        throw new Error(`Dockerfile instruction ${i + 1}: source ${src} leaves the build context`);
      if (!out.includes(norm)) out.push(norm);
    }
  }
  return out;
}
