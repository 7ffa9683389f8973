// Writes dist/require/, a folder marked `"type": "commonjs"`, for the `require` condition of the
// package's exports: a copy of the built declarations (dist/**/*.d.ts), read as CommonJS there,
// and for every export entry a one-line CommonJS file that `require()`s the ES module.
//
// Why: the packages are ES modules only, and Node ^20.19.0 || >=22.12.0 lets CommonJS
// `require()` them. TypeScript under `"module": "node16"` does not know that: a CommonJS file
// importing a package whose types are ESM fails with TS1479. The same declarations read as
// CommonJS describe what `require()` returns on those Node versions (the module's namespace,
// every named export), so a CommonJS project type-checks under node16 as under nodenext. The
// one-line entry keeps one copy of the code: it returns the very module an `import` loads
// (no dual-package hazard), and publint sees CommonJS types beside a CommonJS file.
//
// Run from a package folder after `tsc` (each package's `build` script).
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';

const dist = join(process.cwd(), 'dist');
const target = join(dist, 'require');

/** Every `.d.ts` file under `folder`, skipping the target folder itself. */
async function declarations(folder) {
  const found = [];
  for (const entry of await readdir(folder, { withFileTypes: true })) {
    const path = join(folder, entry.name);
    if (entry.isDirectory()) {
      if (path !== target) found.push(...(await declarations(path)));
    } else if (entry.name.endsWith('.d.ts')) {
      found.push(path);
    }
  }
  return found;
}

await rm(target, { recursive: true, force: true });
const files = await declarations(dist);
if (files.length === 0) {
  console.error(`require-types: no declarations under ${dist}; run tsc first`);
  process.exit(1);
}
for (const file of files) {
  const copy = join(target, relative(dist, file));
  await mkdir(dirname(copy), { recursive: true });
  // The declaration maps point at ../src from dist/; the copies would need other paths, so
  // they go without.
  const text = (await readFile(file, 'utf8')).replace(/\n\/\/# sourceMappingURL=\S+\s*$/, '\n');
  await writeFile(copy, text);
}
await writeFile(join(target, 'package.json'), `${JSON.stringify({ type: 'commonjs' }, null, 2)}\n`);

// The entries: every exports entry of the form { require: { types, default }, types, default }.
const manifest = JSON.parse(await readFile('package.json', 'utf8'));
for (const [subpath, entry] of Object.entries(manifest.exports ?? {})) {
  if (typeof entry !== 'object' || entry === null) continue;
  if (typeof entry.require !== 'object' || entry.require === null) {
    // Every entry point gets the require branch, or CommonJS TypeScript fails on that one.
    const types = String(entry.types ?? '').replace('./dist/', './dist/require/');
    console.error(
      `require-types: exports["${subpath}"] has no require branch; add ` +
        `"require": { "types": "${types}", "default": "${types.replace(/\.d\.ts$/, '.js')}" } before its "types"`,
    );
    process.exit(1);
  }
  const wrapper = resolve(entry.require.default);
  if (!wrapper.startsWith(target) || typeof entry.default !== 'string') {
    console.error(`require-types: exports["${subpath}"].require.default must be under dist/require/`);
    process.exit(1);
  }
  let specifier = relative(dirname(wrapper), resolve(entry.default)).split('\\').join('/');
  if (!specifier.startsWith('.')) specifier = `./${specifier}`;
  await mkdir(dirname(wrapper), { recursive: true });
  await writeFile(
    wrapper,
    `'use strict';\n// Node ^20.19.0 || >=22.12.0 loads the ES module here.\nmodule.exports = require('${specifier}');\n`,
  );
}
