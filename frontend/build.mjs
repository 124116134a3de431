// Builds the console into the Python package: one bundle (our code and @dagrejs/dagre, by esbuild), the
// stylesheet, and swagger-ui-dist's files copied as they come from the registry (served at /docs).
import { build } from "esbuild";
import { cpSync, mkdirSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "..", "machinery", "web", "static", "dist");

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });

await build({
  entryPoints: [join(here, "src", "main.js"), join(here, "src", "console.css")],
  bundle: true,
  minify: true,
  sourcemap: true,
  format: "esm",
  target: ["es2022"],
  outdir: out,
  entryNames: "console",
  legalComments: "linked",
  logLevel: "warning",
});

const swagger = join(here, "node_modules", "swagger-ui-dist");
const swaggerOut = join(out, "swagger-ui");
mkdirSync(swaggerOut);
for (const file of [
  "swagger-ui-bundle.js",
  "swagger-ui-standalone-preset.js",
  "swagger-ui.css",
  "oauth2-redirect.html",
  "favicon-32x32.png",
  "favicon-16x16.png",
  "LICENSE",
  "NOTICE",
]) {
  cpSync(join(swagger, file), join(swaggerOut, file));
}
