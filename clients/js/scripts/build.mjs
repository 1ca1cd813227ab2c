// Builds dist/tessera.js (esbuild: one minified ES module) and dist/tessera.d.ts (tsc, which
// also type-checks the source). tessera embeds dist/tessera.js in its binary, so the built
// files are committed; `--check` builds into a temporary directory and fails when the
// committed files differ from a fresh build.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import * as esbuild from "esbuild";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const check = process.argv.includes("--check");
const out = check ? mkdtempSync(join(tmpdir(), "tessera-js-")) : join(root, "dist");
const files = ["tessera.js", "tessera.d.ts"];
const LIMIT = 8 * 1024;

try {
  mkdirSync(out, { recursive: true });
  const banner = "/*! tessera.js — Apache-2.0 */";
  await esbuild.build({
    entryPoints: [join(root, "src/tessera.ts")],
    outfile: join(out, "tessera.js"),
    bundle: true,
    format: "esm",
    target: "es2022",
    minify: true,
    legalComments: "none",
    banner: { js: banner },
    logLevel: "warning",
  });
  execFileSync(join(root, "node_modules/.bin/tsc"), ["-p", join(root, "tsconfig.json"), "--outDir", out], {
    stdio: "inherit",
  });
  const js = readFileSync(join(out, "tessera.js"));
  const gz = gzipSync(js, { level: 9 }).length;
  console.log(`tessera.js: ${js.length} bytes minified, ${gz} bytes gzipped (limit ${LIMIT})`);
  if (js.length >= LIMIT) throw new Error(`tessera.js is ${js.length} bytes; the limit is ${LIMIT}`);
  if (check) {
    const stale = files.filter((f) => !readFileSync(join(out, f)).equals(readFileSync(join(root, "dist", f))));
    if (stale.length) {
      throw new Error(`dist/${stale.join(", dist/")} differ from a fresh build: run \`npm run build\` in clients/js and commit`);
    }
    console.log("dist/ matches a fresh build");
  }
} finally {
  if (check) rmSync(out, { recursive: true, force: true });
}
