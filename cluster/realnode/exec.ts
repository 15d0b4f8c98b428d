/**
 * Running the host tools the real node needs (ip, iptables, nsenter, umount, ctr), with bounded
 * time and errors that quote the command and its stderr.
 *
 * @module
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/**
 * Runs `cmd args` (no shell) with a timeout (default 30 s).
 * @returns its stdout
 * @throws Error `<cmd> <args> failed: <stderr>` on a non-zero exit, a timeout or a missing command.
 */
export async function run(
  cmd: string,
  args: string[],
  opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {},
): Promise<string> {
  try {
    const { stdout } = await execFileAsync(cmd, args, {
      timeout: opts.timeoutMs ?? 30_000,
      env: opts.env ?? process.env,
      maxBuffer: 16 * 1024 * 1024,
    });
    return stdout;
  } catch (err) {
    const e = err as Error & { stderr?: string };
    throw new Error(`${cmd} ${args.join(' ')} failed: ${(e.stderr || e.message).trim()}`);
  }
}

/** Like {@link run} but never throws: returns whether it succeeded (for cleanup steps). */
export async function tryRun(cmd: string, args: string[], opts: { timeoutMs?: number } = {}): Promise<boolean> {
  try {
    await run(cmd, args, opts);
    return true;
  } catch {
    return false;
  }
}
