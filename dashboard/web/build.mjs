// Builds the dashboard into ../assets, which the Go package embeds.
// The output is committed; CI rebuilds it and fails if it differs, so the
// build must stay deterministic (no timestamps, no absolute paths).
import * as esbuild from 'esbuild';
import { copyFile, mkdir, rm } from 'node:fs/promises';

const out = new URL('../assets/', import.meta.url).pathname;
await rm(out, { recursive: true, force: true });
await mkdir(out, { recursive: true });
await esbuild.build({
  entryPoints: { app: 'src/main.js' },
  bundle: true,
  minify: true,
  format: 'esm',
  target: ['es2020'],
  outdir: out,
  legalComments: 'eof', // keep the Apache-2.0 notices of ECharts and zrender
  logLevel: 'warning',
});
await copyFile('src/index.html', out + 'index.html');
