// Composes a supergraph of subgraph SDL files, offline, with The Guild's composition library
// (the same rules and messages as Apollo's). Run by tests/test_federation.py:
//   node compose.mjs OUT name=file.graphql [name=file.graphql …]
// Prints one JSON line: {"ok": true, "bytes": N, "types": N} or {"ok": false, "errors": […]};
// the supergraph SDL goes to OUT.
import { readFileSync, writeFileSync } from "node:fs";
import { parse } from "graphql";
import { composeServices, compositionHasErrors } from "@theguild/federation-composition";

const [out, ...subgraphs] = process.argv.slice(2);
const services = subgraphs.map((arg) => {
  const [name, file] = arg.split("=");
  return { name, typeDefs: parse(readFileSync(file, "utf8")), url: `http://${name}.invalid/graphql` };
});
const result = composeServices(services);
if (compositionHasErrors(result)) {
  console.log(JSON.stringify({ ok: false, errors: result.errors.map((e) => e.message) }));
  process.exit(1);
}
writeFileSync(out, result.supergraphSdl);
const types = parse(result.supergraphSdl).definitions.filter((d) => d.kind.endsWith("TypeDefinition"));
console.log(JSON.stringify({ ok: true, bytes: Buffer.byteLength(result.supergraphSdl), types: types.length }));
