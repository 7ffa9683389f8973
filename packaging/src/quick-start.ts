/**
 * The Quick start of a README, in the shape the package READMEs promise:
 *
 *     ## Quick start
 *     ```sh            the commands that make the project (npm init, npm install …)
 *     Save this as `quickstart.ts`:
 *     ```ts            the program
 *     Run it with `npx tsx quickstart.ts` …
 *     ```text          what it prints
 */
export interface QuickStart {
  /** The shell commands, one per line, comments and blank lines left out. */
  readonly commands: readonly string[];
  /** The file name the program is saved as. */
  readonly fileName: string;
  readonly program: string;
  /** The command that runs the program. */
  readonly runCommand: string;
  readonly expectedOutput: string;
}

/** A fenced block or a paragraph of the section, in order. */
type Part = { readonly kind: 'code'; readonly language: string; readonly text: string } | { readonly kind: 'prose'; readonly text: string };

/** Reads the Quick start section of `markdown`, or throws saying which part is missing. */
export function parseQuickStart(markdown: string, source: string): QuickStart {
  const parts = sectionParts(markdown, source);
  const problem = (what: string): Error => new Error(`${source}: the Quick start ${what}`);

  const shell = parts.findIndex((part) => part.kind === 'code' && part.language === 'sh');
  if (shell < 0) throw problem('has no ```sh block of commands');
  const commands = (parts[shell]?.text ?? '')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));

  const save = parts.findIndex((part, index) => index > shell && part.kind === 'prose' && /Save this as `[^`]+`/.test(part.text));
  if (save < 0) throw problem('has no "Save this as `file`:" after its commands');
  const fileName = /Save this as `([^`]+)`/.exec(parts[save]?.text ?? '')?.[1] ?? '';
  const program = parts[save + 1];
  if (program?.kind !== 'code' || program.language !== 'ts')
    throw problem(`has no \`\`\`ts block right after "Save this as \`${fileName}\`"`);

  const runAt = parts.findIndex((part, index) => index > save + 1 && part.kind === 'prose' && /Run it with `[^`]+`/.test(part.text));
  if (runAt < 0) throw problem('has no "Run it with `command`" after the program');
  const runCommand = /Run it with `([^`]+)`/.exec(parts[runAt]?.text ?? '')?.[1] ?? '';
  const output = parts.slice(runAt + 1).find((part) => part.kind === 'code');
  if (output?.kind !== 'code' || output.language !== 'text')
    throw problem(`has no \`\`\`text block of output after "Run it with \`${runCommand}\`"`);

  return { commands, fileName, program: program.text, runCommand, expectedOutput: output.text };
}

/** The fenced blocks and paragraphs between the Quick start heading and the next heading of its level or above. */
function sectionParts(markdown: string, source: string): Part[] {
  const lines = markdown.split(/\r?\n/);
  const start = lines.findIndex((line) => /^#{1,6}\s+Quick start\s*$/i.test(line));
  if (start < 0) throw new Error(`${source}: no "Quick start" heading`);
  const level = /^#+/.exec(lines[start] ?? '')?.[0].length ?? 2;
  const parts: Part[] = [];
  let prose: string[] = [];
  const endProse = (): void => {
    if (prose.length > 0) parts.push({ kind: 'prose', text: prose.join(' ') });
    prose = [];
  };
  for (let index = start + 1; index < lines.length; index++) {
    const line = lines[index] ?? '';
    const heading = /^(#+)\s/.exec(line);
    if (heading !== null && (heading[1]?.length ?? 0) <= level) break;
    const fence = /^(`{3,})\s*([\w-]*)/.exec(line);
    if (fence !== null) {
      endProse();
      const close = fence[1] ?? '```';
      const body: string[] = [];
      index++;
      while (index < lines.length && !(lines[index] ?? '').startsWith(close)) body.push(lines[index++] ?? '');
      if (index >= lines.length) throw new Error(`${source}: an unclosed ${close} block in the Quick start`);
      parts.push({ kind: 'code', language: fence[2] ?? '', text: `${body.join('\n')}\n` });
    } else if (line.trim() === '') {
      endProse();
    } else {
      prose.push(line.trim());
    }
  }
  endProse();
  return parts;
}
