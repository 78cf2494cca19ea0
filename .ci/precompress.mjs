// Writes brotli (.br) and gzip (.gz) copies of the site's files beside them, at the highest
// levels, for the server to send to browsers that accept them (see src/web/headers.rs).
// Usage: node .ci/precompress.mjs [site root, default target/site]
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';

const root = process.argv[2] ?? 'target/site';
const compressible = /\.(wasm|js|css|svg|html|json|txt)$/;

function walk(dir) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) {
      walk(path);
    } else if (compressible.test(name)) {
      const raw = readFileSync(path);
      const br = brotliCompressSync(raw, {
        params: {
          [constants.BROTLI_PARAM_QUALITY]: constants.BROTLI_MAX_QUALITY,
          [constants.BROTLI_PARAM_SIZE_HINT]: raw.length,
        },
      });
      const gz = gzipSync(raw, { level: 9 });
      writeFileSync(`${path}.br`, br);
      writeFileSync(`${path}.gz`, gz);
      console.log(`${path}: ${raw.length} bytes, brotli ${br.length}, gzip ${gz.length}`);
    }
  }
}

walk(root);
