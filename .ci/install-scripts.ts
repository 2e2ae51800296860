/**
 * Fails when a dependency in package-lock.json has an install script that
 * package.json's `allowScripts` neither allows nor denies by name. npm 11
 * runs only the allowed ones; this keeps a new dependency's script (a
 * telemetry postinstall, say) from being waved through unread.
 */
import { readFileSync } from "node:fs";

const pkg = JSON.parse(readFileSync("package.json", "utf8")) as {
  allowScripts?: Record<string, boolean>;
};
const lock = JSON.parse(readFileSync("package-lock.json", "utf8")) as {
  packages: Record<string, { hasInstallScript?: boolean; version?: string }>;
};
const listed = pkg.allowScripts ?? {};
const unlisted: string[] = [];
const used = new Set<string>();
for (const [path, entry] of Object.entries(lock.packages)) {
  if (!entry.hasInstallScript) continue;
  const name = path.slice(path.lastIndexOf("node_modules/") + "node_modules/".length);
  used.add(name);
  if (!(name in listed)) unlisted.push(`${name}@${entry.version}`);
}
const stale = Object.keys(listed).filter((name) => !used.has(name));
if (unlisted.length > 0 || stale.length > 0) {
  if (unlisted.length > 0)
    console.error(
      `install scripts not reviewed: ${unlisted.join(", ")}; read them, then add each to package.json's allowScripts as true (runs) or false (denied)`,
    );
  if (stale.length > 0)
    console.error(`allowScripts names packages without install scripts: ${stale.join(", ")}`);
  process.exit(1);
}
const denied = Object.keys(listed).filter((name) => listed[name] === false);
console.log(
  `install scripts: ${used.size - denied.length} allowed, ${denied.length} denied (${denied.join(", ")})`,
);
