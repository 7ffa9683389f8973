import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/** The output of a finished command. */
export interface CommandOutput {
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs `command` with `args` in `cwd` and resolves with its output; rejects with an error that
 * names the command, the folder and the command's own output when it exits non-zero.
 */
export async function run(command: string, args: readonly string[], cwd: string): Promise<CommandOutput> {
  try {
    const { stdout, stderr } = await execFileAsync(command, [...args], {
      cwd,
      maxBuffer: 64 * 1024 * 1024,
      // npm must not read the repository's .npmrc or pnpm settings through the environment.
      env: withoutPackageManagerSettings(process.env),
    });
    return { stdout, stderr };
  } catch (error) {
    const failed = error as Error & { stdout?: string; stderr?: string };
    throw new Error(
      `${command} ${args.join(' ')} failed in ${cwd}: ${failed.message}\n--- stdout\n${failed.stdout ?? ''}\n--- stderr\n${failed.stderr ?? ''}`,
    );
  }
}

/** The environment minus the npm_* variables pnpm sets for the script that runs these tests. */
function withoutPackageManagerSettings(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const clean: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(env)) {
    if (!/^npm_/i.test(name) && !/^pnpm_/i.test(name)) clean[name] = value;
  }
  return clean;
}
